package dev.steadyws

import java.util.concurrent.CountDownLatch
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.concurrent.thread
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout

/**
 * A socket stand-in that records what it was told, in order, and whose status can be watched
 * and closed like a socket's.
 */
private class FakeTarget : LifecycleTarget {
    val told = mutableListOf<Any>() // AppState and NetworkStatus values
    private val status = MutableStateFlow(SocketStatus(SocketState.Open, 0uL))

    /** Collectors of [watch] running now. */
    val watchers: Int get() = status.subscriptionCount.value

    override fun setAppState(state: AppState) = synchronized(this) { told += state; Unit }
    override fun setNetwork(status: NetworkStatus) = synchronized(this) { told += status; Unit }
    override fun watch(): Flow<SocketStatus> = status

    fun close() {
        status.value = SocketStatus(SocketState.Closed, 0uL)
    }

    fun snapshot(): List<Any> = synchronized(this) { told.toList() }
}

/** Wait until [condition] holds, failing with [what] after [timeout]: for what a binding does on another thread. */
private fun eventually(what: String, timeout: Duration = 5.seconds, condition: () -> Boolean) = runBlocking {
    try {
        withTimeout(timeout) { while (!condition()) delay(5) }
    } catch (e: Exception) {
        throw AssertionError("not within $timeout: $what", e)
    }
}

/**
 * App visibility as a platform would report it. [emit] reaches the active observers; [emitLate]
 * reaches every listener ever given, as a callback already queued when it was unregistered would.
 */
private class FakeVisibility(
    @Volatile override var current: AppState,
    /** Replay the current state from inside observe(), as Lifecycle.addObserver does. */
    private val replayOnObserve: Boolean = false,
) : AppVisibility {
    private val listeners = mutableListOf<(AppState) -> Unit>()
    private val active = LinkedHashSet<(AppState) -> Unit>()
    val observers: Int get() = synchronized(this) { active.size }
    val observeCalls: Int get() = synchronized(this) { listeners.size }

    override fun observe(listener: (AppState) -> Unit): AutoCloseable {
        synchronized(this) { listeners += listener; active += listener }
        if (replayOnObserve) listener(current)
        return AutoCloseable { synchronized(this) { active.remove(listener) } }
    }

    fun emit(state: AppState) {
        current = state
        synchronized(this) { active.toList() }.forEach { it(state) }
    }

    fun emitLate(state: AppState) = synchronized(this) { listeners.toList() }.forEach { it(state) }
}

/** The default network as a platform would report it; [failObserve] makes subscribing throw. */
private class FakeNetwork(
    @Volatile override var current: DefaultNetwork.Route?,
    private val failObserve: Boolean = false,
) : DefaultNetwork {
    private val listeners = mutableListOf<DefaultNetwork.Listener>()
    private val active = LinkedHashSet<DefaultNetwork.Listener>()
    val observers: Int get() = synchronized(this) { active.size }
    val observeCalls: Int get() = synchronized(this) { listeners.size }

    override fun observe(listener: DefaultNetwork.Listener): AutoCloseable {
        if (failObserve) throw IllegalStateException("too many network callbacks")
        synchronized(this) { listeners += listener; active += listener }
        return AutoCloseable { synchronized(this) { active.remove(listener) } }
    }

    private fun each(late: Boolean = false, call: (DefaultNetwork.Listener) -> Unit) =
        synchronized(this) { (if (late) listeners else active).toList() }.forEach(call)

    fun available(handle: Long, name: String?, late: Boolean = false) = each(late) { it.onAvailable(DefaultNetwork.Route(handle, name)) }
    fun changed(handle: Long, name: String?, late: Boolean = false) = each(late) { it.onChanged(DefaultNetwork.Route(handle, name)) }
    fun lost(handle: Long, late: Boolean = false) = each(late) { it.onLost(handle) }
}

private val FG = AppState.FOREGROUND
private val BG = AppState.BACKGROUND
private fun wifi(handle: Long = 1) = DefaultNetwork.Route(handle, "wifi")
private fun available(name: String?) = NetworkStatus.Available(name)
private val unavailable = NetworkStatus.Unavailable

@Timeout(60)
class LifecycleBindingTest {
    @Test
    fun `attach reports the visibility and the network as they are at that moment`() {
        // A background launch without a network (a push while offline).
        FakeTarget().also { target ->
            target.attachLifecycle(FakeVisibility(BG), FakeNetwork(null))
            assertEquals(listOf<Any>(BG, unavailable), target.told)
        }
        // In the foreground on wifi.
        FakeTarget().also { target ->
            target.attachLifecycle(FakeVisibility(FG), FakeNetwork(wifi()))
            assertEquals(listOf<Any>(FG, available("wifi")), target.told)
        }
        // A default network whose transport is not known: available all the same.
        FakeTarget().also { target ->
            target.attachLifecycle(FakeVisibility(FG), FakeNetwork(DefaultNetwork.Route(7, null)))
            assertEquals(listOf<Any>(FG, available(null)), target.told)
        }
    }

    @Test
    fun `a source that replays its state while subscribing is reported once`() {
        // Lifecycle.addObserver calls onStart from inside addObserver when the process is started.
        val target = FakeTarget()
        target.attachLifecycle(FakeVisibility(FG, replayOnObserve = true), FakeNetwork(wifi()))
        assertEquals(listOf<Any>(FG, available("wifi")), target.told)
    }

    @Test
    fun `visibility changes are forwarded once each, repeats dropped`() {
        val target = FakeTarget()
        val visibility = FakeVisibility(FG)
        target.attachLifecycle(visibility, FakeNetwork(wifi()))
        for (state in listOf(FG, BG, BG, FG, FG, BG)) visibility.emit(state)
        assertEquals(listOf<Any>(FG, available("wifi"), BG, FG, BG), target.told)
    }

    @Test
    fun `network loss and return are forwarded once each, and a loss is reported only for the default network`() {
        val target = FakeTarget()
        val network = FakeNetwork(wifi(handle = 1))
        target.attachLifecycle(FakeVisibility(FG), network)
        network.changed(1, "wifi") // a capabilities change that leaves the interface as it is
        network.lost(2) // not the default network
        network.lost(1)
        network.lost(1)
        network.available(3, "cellular")
        network.available(3, "cellular")
        assertEquals(listOf<Any>(FG, available("wifi"), unavailable, available("cellular")), target.told)
    }

    @Test
    fun `an unnamed network is reported as the platform says, the socket keeping the name it knew`() {
        // A transport the glue does not name: reported without a name, not kept back by the
        // binding; what that means (nothing: the interface stays known) is the native rule.
        val target = FakeTarget()
        val network = FakeNetwork(wifi(handle = 1))
        target.attachLifecycle(FakeVisibility(FG), network)
        network.changed(1, null)
        network.changed(1, null)
        network.changed(1, "wifi")
        assertEquals(listOf<Any>(FG, available("wifi"), available(null), available("wifi")), target.told)
    }

    @Test
    fun `a switch of default network is reported as Available with the new interface, once that is known`() {
        val target = FakeTarget()
        val network = FakeNetwork(wifi(handle = 1))
        target.attachLifecycle(FakeVisibility(FG), network)
        // Android: onAvailable(new) first, its capabilities right after. The unnamed report goes
        // through as it came: the native socket keeps the interface it knew until the name comes.
        network.available(2, null)
        assertEquals(listOf<Any>(FG, available("wifi"), available(null)), target.told)
        network.changed(2, "cellular")
        // Late reports about the replaced network change nothing.
        network.changed(1, "wifi")
        network.lost(1)
        assertEquals(listOf<Any>(FG, available("wifi"), available(null), available("cellular")), target.told)
        // Back to wifi, with the interface known at once (as the glue reports it before API 26).
        network.available(4, "wifi")
        assertEquals(listOf<Any>(FG, available("wifi"), available(null), available("cellular"), available("wifi")), target.told)
    }

    @Test
    fun `after a loss, a network whose interface is not known yet is reported at once`() {
        val target = FakeTarget()
        val network = FakeNetwork(null)
        target.attachLifecycle(FakeVisibility(FG), network)
        network.available(5, null)
        network.changed(5, "wifi")
        network.changed(5, "wifi")
        assertEquals(listOf<Any>(FG, unavailable, available(null), available("wifi")), target.told)
    }

    @Test
    fun `detach unsubscribes, is idempotent, and nothing reaches the socket after it`() {
        val target = FakeTarget()
        val visibility = FakeVisibility(FG)
        val network = FakeNetwork(wifi())
        val binding = target.attachLifecycle(visibility, network)
        assertEquals(1, visibility.observers)
        assertEquals(1, network.observers)
        assertEquals(1, target.watchers)
        binding.detach()
        assertEquals(0, visibility.observers)
        assertEquals(0, network.observers)
        eventually("the binding stops watching the socket") { target.watchers == 0 }
        // Callbacks already on their way when it detached.
        visibility.emitLate(BG)
        network.lost(1, late = true)
        network.available(2, "cellular", late = true)
        binding.detach()
        binding.close()
        target.close()
        assertEquals(listOf<Any>(FG, available("wifi")), target.told)
    }

    @Test
    fun `closing the socket detaches the binding`() {
        val target = FakeTarget()
        val visibility = FakeVisibility(FG)
        val network = FakeNetwork(wifi())
        target.attachLifecycle(visibility, network)
        assertEquals(1, target.watchers)
        target.close()
        // The binding sees the Closed status and detaches.
        eventually("the sources are unsubscribed") { visibility.observers == 0 && network.observers == 0 }
        eventually("the watch ended") { target.watchers == 0 }
        visibility.emitLate(BG)
        network.lost(1, late = true)
        assertEquals(listOf<Any>(FG, available("wifi")), target.told)
    }

    @Test
    fun `attaching to a closed socket subscribes to nothing and reports nothing`() {
        val target = FakeTarget().apply { close() }
        val visibility = FakeVisibility(FG)
        val network = FakeNetwork(wifi())
        val binding = target.attachLifecycle(visibility, network)
        assertEquals(0, visibility.observeCalls)
        assertEquals(0, network.observeCalls)
        assertEquals(emptyList<Any>(), target.told)
        assertEquals(0, target.watchers)
        binding.detach()
    }

    @Test
    fun `a source that cannot subscribe leaves nothing subscribed and throws its exception`() {
        val target = FakeTarget()
        val visibility = FakeVisibility(FG)
        val failure = assertThrows(IllegalStateException::class.java) {
            target.attachLifecycle(visibility, FakeNetwork(wifi(), failObserve = true))
        }
        assertEquals("too many network callbacks", failure.message)
        assertEquals(0, visibility.observers)
        eventually("the watch of the socket ended") { target.watchers == 0 }
        assertEquals(emptyList<Any>(), target.told)
    }

    @Test
    fun `reports from two threads are never repeated, and none arrives after detach returns`() {
        val target = FakeTarget()
        val visibility = FakeVisibility(FG)
        val network = FakeNetwork(wifi())
        val binding = target.attachLifecycle(visibility, network)
        val stop = AtomicBoolean(false)
        val started = CountDownLatch(2)
        // Both keep calling the listeners they were given, as callbacks already queued would.
        val threads = listOf(
            thread(name = "visibility") {
                started.countDown()
                var i = 0
                while (!stop.get()) visibility.emitLate(if (i++ % 3 == 0) FG else BG)
            },
            thread(name = "network") {
                started.countDown()
                var i = 0L
                while (!stop.get()) {
                    when (i % 4) {
                        0L -> network.lost(1, late = true)
                        1L -> network.available(1, "wifi", late = true)
                        2L -> network.available(2, null, late = true)
                        else -> network.changed(2, "cellular", late = true)
                    }
                    i++
                }
            },
        )
        started.await()
        Thread.sleep(100)
        binding.detach()
        val atDetach = target.snapshot()
        Thread.sleep(100)
        stop.set(true)
        threads.forEach { it.join() }
        assertEquals(atDetach, target.snapshot(), "nothing after detach returned")
        val apps = atDetach.filterIsInstance<AppState>()
        val networks = atDetach.filterIsInstance<NetworkStatus>()
        assertTrue(apps.size > 2 && networks.size > 2, "both threads were reported: $apps $networks")
        assertTrue(apps.zipWithNext().none { (a, b) -> a == b }, "no visibility repeated")
        assertTrue(networks.zipWithNext().none { (a, b) -> a == b }, "no network status repeated")
    }

    @Test
    fun `a Socket takes the hints, and closing it detaches`(): Unit = runBlocking {
        // Nothing listens on the port yet, and the backoff would wait 5 s: the socket reconnects
        // when the binding reports the network back.
        val port = ServerProcess.freePort()
        val options = quick("ws://127.0.0.1:$port/ws") {
            backoffInitialMs = 5_000u
            backoffMaxMs = 10_000u
            background = BackgroundMode.DISCONNECT_AFTER_GRACE
            backgroundGraceMs = 300u
        }
        val visibility = FakeVisibility(FG)
        val network = FakeNetwork(null)
        Socket(options).use { ws ->
            val events = record(ws)
            val binding = ws.attachLifecycle(visibility, network) // offline at attach
            ws.connect()
            // The socket knew it was offline before connect: it waits without a first attempt.
            val first = withTimeout(10.seconds) { events.receive() } as SocketEvent.StateChanged
            assertEquals(SocketState.WaitingForNetwork, first.state)
            assertInstanceOf(StateCause.App::class.java, first.cause)
            ServerProcess.start("127.0.0.1:$port").use {
                network.available(1, "wifi")
                withTimeout(3.seconds) { ws.waitOpen() } // at once, not after the 5 s backoff
            }
            visibility.emit(BG)
            val suspended = events.await("Suspended") { it is SocketEvent.StateChanged && it.state == SocketState.Suspended }
            assertInstanceOf(StateCause.Lifecycle::class.java, (suspended as SocketEvent.StateChanged).cause)

            ws.close()
            // The binding watched the socket: it saw Closed and let go of the platform.
            eventually("the binding detached from the closed socket") {
                visibility.observers == 0 && network.observers == 0
            }
            binding.detach() // after the socket's close did: a no-op
        }
        Socket(options).use { ws ->
            ws.close()
            // Attaching to a closed socket subscribes to nothing: its watch shows Closed at once.
            val visibility2 = FakeVisibility(FG)
            val network2 = FakeNetwork(null)
            ws.attachLifecycle(visibility2, network2)
            assertEquals(0, visibility2.observeCalls)
            assertEquals(0, network2.observeCalls)
        }
    }
}
