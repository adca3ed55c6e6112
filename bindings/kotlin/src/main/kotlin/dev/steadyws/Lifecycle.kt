// Platform hints without the platform: a LifecycleBinding tells a socket whether the app is
// visible and which network is the default, from two small sources that the platform glue
// implements (on Android, Android.kt in the Android module: ProcessLifecycleOwner and
// ConnectivityManager). Every decision (what to report at attach, which repeats to drop, which
// network a loss is about, when to stop) is made here, in plain Kotlin, so that it is tested on
// the JVM with fakes; the glue only translates platform callbacks.

package dev.steadyws

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.flow.takeWhile
import kotlinx.coroutines.launch

/**
 * What a [LifecycleBinding] drives: [Socket] implements it (the tests use a fake). Its two
 * hints must not block: a binding calls them from platform callbacks, the main thread included.
 * The binding ends when [watch] shows [SocketState.Closed].
 */
interface LifecycleTarget {
    /** See [Socket.setAppState]. */
    fun setAppState(state: AppState)

    /** See [Socket.setNetwork]. */
    fun setNetwork(status: NetworkStatus)

    /** See [Socket.watch]: the status now, then each change, ending after [SocketState.Closed]. */
    fun watch(): Flow<SocketStatus>
}

/** Whether the app is visible, as the platform reports it (on Android, `ProcessLifecycleOwner`). */
interface AppVisibility {
    /** The state now. Read once while attaching: it must return at once and not call back. */
    val current: AppState

    /**
     * Report changes to [listener], from any thread, until the returned handle is closed. Repeats
     * are harmless (the binding drops them), and so is replaying the current state at once, as
     * `Lifecycle.addObserver` does. A report already on its way when the handle is closed is
     * dropped by the binding.
     */
    fun observe(listener: (AppState) -> Unit): AutoCloseable
}

/**
 * The system's default network, as the platform reports it (on Android,
 * `ConnectivityManager.registerDefaultNetworkCallback`). Networks are told apart by a handle
 * (Android's `Network.getNetworkHandle()`), so that a late report about a network that is no
 * longer the default can be recognised and dropped.
 */
interface DefaultNetwork {
    /** The default network now, null when there is none. Read once while attaching: it must not call back. */
    val current: Route?

    /** Report changes to [listener], from any thread, until the returned handle is closed. */
    fun observe(listener: Listener): AutoCloseable

    /**
     * A network: [handle] identifies it; [interfaceName] is how it reaches the internet ("wifi",
     * "cellular", "ethernet", …), null when not known (yet). The socket compares these names:
     * a change of name is what makes it check its connection.
     */
    data class Route(val handle: Long, val interfaceName: String?)

    /** The platform's callbacks, as they come. */
    interface Listener {
        /** [network] is the default network now, replacing any previous one. */
        fun onAvailable(network: Route)

        /** The default network [network] changed (capabilities, transport). */
        fun onChanged(network: Route)

        /** The network [handle] is gone, and no other network replaced it as the default. */
        fun onLost(handle: Long)
    }
}

/**
 * Attach this socket to the app's visibility and to the default network (on Android, use
 * `attachToAndroid(context)`, which passes the platform's sources): see [LifecycleBinding] for
 * what is reported when. Attach before [Socket.connect], so that the first attempt already
 * knows whether the app is in the background and whether there is a network.
 *
 * If the target is closed already (its [LifecycleTarget.watch] shows [SocketState.Closed] at
 * once), nothing is subscribed and the binding is detached at once.
 * If a source fails to subscribe, what was subscribed is released and its exception is thrown.
 */
fun LifecycleTarget.attachLifecycle(visibility: AppVisibility, network: DefaultNetwork): LifecycleBinding =
    LifecycleBinding(this).apply { start(visibility, network) }

/**
 * Keeps a socket told of the app's visibility and of the default network, from
 * [attachLifecycle] until [detach] or until the socket is closed.
 *
 * - **At attach** it reports both as they are at that moment. A socket created while the app is
 *   in the background (a push, a background job) is treated as such from the start, and one
 *   created without a network waits for one instead of spending attempts.
 * - **Then every change, once.** Repeats are dropped, so a platform that reports the same thing
 *   twice (or a capabilities change that leaves the interface as it was) does not wake the
 *   socket.
 * - **A new default network** is reported as [NetworkStatus.Available] with its interface as the
 *   platform names it, or without one while Android has not named it yet (the capabilities that
 *   follow do). What the socket makes of a missing name (it keeps the interface it knew) and of
 *   a new one (it checks its connection at once, since one opened over the old interface is
 *   likely dead) is the native socket's rule, the same on every platform.
 * - **A loss** is reported ([NetworkStatus.Unavailable]) only for the current default network; a
 *   late report about a network that was already replaced is dropped.
 * - **The end.** It watches the socket ([LifecycleTarget.watch]) and detaches once the socket is
 *   closed, from a coroutine that holds no thread while it waits. Reports that arrive between the
 *   close and the detach are ignored by the closed socket.
 *
 * Reports reach the socket one at a time, in the order they were decided, whatever threads the
 * sources call from. [detach] leaves the socket with the last hints it was given.
 */
class LifecycleBinding internal constructor(private val target: LifecycleTarget) : AutoCloseable {
    // Everything below is guarded by `lock`, and the target is called under it, so that two
    // sources reporting from two threads cannot reorder what the target is told.
    private val lock = Any()
    private var detached = false
    /** What to close at detach: the watch of the socket, then the sources' subscriptions. */
    private val subscriptions = ArrayList<AutoCloseable>()
    /** What the target was told last (null: nothing yet), to drop repeats. */
    private var toldApp: AppState? = null
    private var toldNetwork: NetworkStatus? = null
    /** The handle of the default network as reported so far; null when there is none. */
    private var defaultHandle: Long? = null

    private val networkListener = object : DefaultNetwork.Listener {
        override fun onAvailable(network: DefaultNetwork.Route) = locked { available(network) }

        override fun onChanged(network: DefaultNetwork.Route) = locked {
            if (network.handle == defaultHandle) tell(NetworkStatus.Available(network.interfaceName))
        }

        override fun onLost(handle: Long) = locked {
            if (handle == defaultHandle) lost()
        }
    }

    /**
     * Subscribe, then report the state at this moment. In that order: a change between the two
     * is then either in the snapshot or reported after it, never missed.
     */
    internal fun start(visibility: AppVisibility, network: DefaultNetwork) {
        try {
            subscribe {
                // Started in place, so that a socket closed already is seen before anything is
                // subscribed; later statuses resume it on Dispatchers.Default, where detaching
                // (unsubscribing from the platform) may run.
                val watching = CoroutineScope(Dispatchers.Default).launch(start = CoroutineStart.UNDISPATCHED) {
                    target.watch().takeWhile { it.state != SocketState.Closed }.collect()
                    detach()
                }
                AutoCloseable { watching.cancel() }
            }
            subscribe { visibility.observe { state -> locked { appState(state) } } }
            subscribe { network.observe(networkListener) }
            locked {
                appState(visibility.current)
                val now = network.current
                if (now == null) lost() else available(now)
            }
        } catch (e: Throwable) {
            detach()
            throw e
        }
    }

    /**
     * Stop reporting: unsubscribe from both sources and stop watching the socket. Once it
     * returns, the socket is told nothing more, even by a platform callback that was already on
     * its way (one running concurrently finishes first). Idempotent; the socket's close leads to
     * it.
     */
    fun detach() {
        val ending = synchronized(lock) {
            if (detached) return
            detached = true
            subscriptions.toList().also { subscriptions.clear() }
        }
        // Outside the lock: unsubscribing calls into the platform, which may be delivering a
        // callback that waits for the lock.
        runAll(ending.asReversed().map { it::close })
    }

    /** Same as [detach], for `use {}`. */
    override fun close() = detach()

    private inline fun locked(block: () -> Unit) = synchronized(lock) {
        if (!detached) block()
    }

    private inline fun subscribe(subscribe: () -> AutoCloseable) {
        if (synchronized(lock) { detached }) return
        val subscription = subscribe()
        val kept = synchronized(lock) { !detached && subscriptions.add(subscription) }
        if (!kept) subscription.close() // detached meanwhile (the socket was closed)
    }

    private fun appState(state: AppState) {
        if (state == toldApp) return
        toldApp = state
        target.setAppState(state)
    }

    private fun available(network: DefaultNetwork.Route) {
        defaultHandle = network.handle
        tell(NetworkStatus.Available(network.interfaceName))
    }

    private fun lost() {
        defaultHandle = null
        tell(NetworkStatus.Unavailable)
    }

    private fun tell(status: NetworkStatus) {
        if (status == toldNetwork) return
        toldNetwork = status
        target.setNetwork(status)
    }
}

/**
 * Run every action, even when one throws; then throw the first failure, with the later ones
 * attached as suppressed. Used to release several things where one failing must not leak the rest.
 */
internal fun runAll(actions: List<() -> Unit>) {
    var failure: Throwable? = null
    for (action in actions) {
        try {
            action()
        } catch (e: Throwable) {
            val first = failure
            if (first == null) failure = e else first.addSuppressed(e)
        }
    }
    failure?.let { throw it }
}
