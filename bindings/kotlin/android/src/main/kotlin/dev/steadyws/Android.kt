// The Android sources of a LifecycleBinding (Lifecycle.kt, shared with the JVM build, makes
// every decision and is tested there): the process's visibility from ProcessLifecycleOwner, and
// the default network from ConnectivityManager.registerDefaultNetworkCallback. Only translation
// of platform callbacks lives here, because this file is compiled only by the Android build.

package dev.steadyws

import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import android.os.Build
import android.os.Handler
import android.os.Looper
import androidx.lifecycle.DefaultLifecycleObserver
import androidx.lifecycle.Lifecycle
import androidx.lifecycle.LifecycleOwner
import androidx.lifecycle.ProcessLifecycleOwner

/**
 * Report the app's visibility and the default network to this socket, from now until the socket
 * is closed (or [LifecycleBinding.detach]): the state at this moment first (a socket created
 * during a background launch starts in the background; one created offline waits for a network),
 * then every change. Call it once per socket, before [Socket.connect], from any thread.
 *
 * Visibility is the whole process's, from `ProcessLifecycleOwner`: foreground while any activity
 * is started, background 700 ms after the last one stopped (so a rotation is not a trip to the
 * background). The network is the default one, from `registerDefaultNetworkCallback`, which
 * needs `ACCESS_NETWORK_STATE` (this library's manifest declares it). Android allows an app
 * about 100 network callbacks at once: each attached socket holds one until it is closed.
 *
 * It also initialises TLS for the process ([AndroidTls.init]), which `wss://` needs on Android.
 */
fun Socket.attachToAndroid(context: Context): LifecycleBinding {
    AndroidTls.init(context.applicationContext)
    return attachLifecycle(ProcessVisibility, AndroidDefaultNetwork(context.applicationContext))
}

/**
 * TLS on Android: the native library checks server certificates with Android's own trust store
 * (through rustls-platform-verifier), which it reaches through the JVM and needs the app's
 * `Context` for. Call [init] once before the first `wss://` connection of the process, e.g. in
 * `Application.onCreate`, if you do not use [attachToAndroid] (which calls it). Without it, every
 * `wss://` attempt fails with a TLS error saying the verifier was not initialised.
 */
object AndroidTls {
    init {
        // The JNI entry point lives in the same library the generated bindings load through JNA.
        System.loadLibrary("steadyws_ffi")
    }

    /** Idempotent; throws `RuntimeException` if the JVM refuses the calls the verifier needs. */
    @JvmStatic
    external fun init(context: Context)
}

/** Foreground from `ON_START` of the process lifecycle to its `ON_STOP`. */
private object ProcessVisibility : AppVisibility {
    private val lifecycle: Lifecycle get() = ProcessLifecycleOwner.get().lifecycle
    private val main = Handler(Looper.getMainLooper())

    // Reading the state is allowed on any thread; only observers must be added on the main one.
    override val current: AppState
        get() = when {
            lifecycle.currentState.isAtLeast(Lifecycle.State.STARTED) -> AppState.FOREGROUND
            else -> AppState.BACKGROUND
        }

    override fun observe(listener: (AppState) -> Unit): AutoCloseable {
        val observer = object : DefaultLifecycleObserver {
            override fun onStart(owner: LifecycleOwner) = listener(AppState.FOREGROUND)
            override fun onStop(owner: LifecycleOwner) = listener(AppState.BACKGROUND)
        }
        // The main looper runs posts in order: a removal posted after an addition follows it.
        onMain {
            lifecycle.addObserver(observer)
            // addObserver replays ON_START, never ON_STOP: when this was posted, a stop between the
            // binding's snapshot and now would be missed without this report (a repeat is dropped).
            listener(current)
        }
        return AutoCloseable { onMain { lifecycle.removeObserver(observer) } }
    }

    /** LifecycleRegistry refuses observers from other threads. */
    private fun onMain(block: () -> Unit) {
        if (Looper.myLooper() == Looper.getMainLooper()) block() else main.post { block() }
    }
}

/** The default network, told apart by `Network.getNetworkHandle()`, named by its transport. */
private class AndroidDefaultNetwork(context: Context) : DefaultNetwork {
    private val connectivity: ConnectivityManager =
        checkNotNull(context.getSystemService(ConnectivityManager::class.java)) { "no ConnectivityManager on this device" }

    override val current: DefaultNetwork.Route?
        get() = connectivity.activeNetwork?.let { route(it, connectivity.getNetworkCapabilities(it)) }

    override fun observe(listener: DefaultNetwork.Listener): AutoCloseable {
        val callback = object : ConnectivityManager.NetworkCallback() {
            override fun onAvailable(network: Network) {
                // From API 26 the capabilities follow at once (onCapabilitiesChanged), and reading
                // them here is racy, so the interface comes from there. Before API 26 they may
                // never follow: reading them here is the only way to name the new interface.
                val old = Build.VERSION.SDK_INT < Build.VERSION_CODES.O
                listener.onAvailable(route(network, if (old) connectivity.getNetworkCapabilities(network) else null))
            }

            override fun onCapabilitiesChanged(network: Network, capabilities: NetworkCapabilities) =
                listener.onChanged(route(network, capabilities))

            override fun onLost(network: Network) = listener.onLost(network.networkHandle)
        }
        connectivity.registerDefaultNetworkCallback(callback)
        return AutoCloseable { connectivity.unregisterNetworkCallback(callback) }
    }

    private fun route(network: Network, capabilities: NetworkCapabilities?) =
        DefaultNetwork.Route(network.networkHandle, interfaceName(capabilities))

    /**
     * The transport, as the socket compares it. Physical transports first: where a VPN's
     * capabilities also list the transport underneath (recent Android versions do), that is what
     * changes when the device moves.
     */
    private fun interfaceName(capabilities: NetworkCapabilities?): String? {
        if (capabilities == null) return null
        return when {
            capabilities.hasTransport(NetworkCapabilities.TRANSPORT_WIFI) -> "wifi"
            capabilities.hasTransport(NetworkCapabilities.TRANSPORT_CELLULAR) -> "cellular"
            capabilities.hasTransport(NetworkCapabilities.TRANSPORT_ETHERNET) -> "ethernet"
            capabilities.hasTransport(NetworkCapabilities.TRANSPORT_BLUETOOTH) -> "bluetooth"
            capabilities.hasTransport(NetworkCapabilities.TRANSPORT_VPN) -> "vpn"
            else -> null
        }
    }
}
