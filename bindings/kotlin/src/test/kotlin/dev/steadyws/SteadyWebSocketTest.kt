package dev.steadyws

import java.nio.file.Files
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.async
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.ReceiveChannel
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout

/** Short timeouts, as in the Rust end-to-end suite. */
private fun quick(url: String, configure: SocketOptions.() -> Unit = {}) = SocketOptions(
    url = url,
    backoffInitialMs = 100u,
    backoffMaxMs = 1000u,
    heartbeatIntervalMs = 500u,
    heartbeatTimeoutMs = 500u,
).apply(configure)

/** Start collecting [ws]'s events now (before the next call), into a channel the test reads. */
private fun CoroutineScope.record(ws: SteadyWebSocket): ReceiveChannel<SocketEvent> {
    val channel = Channel<SocketEvent>(Channel.UNLIMITED)
    launch(start = CoroutineStart.UNDISPATCHED) {
        ws.events.collect { channel.send(it) }
        channel.close()
    }
    return channel
}

/** The next event matching [predicate], skipping others; fails after [timeout]. */
private suspend fun ReceiveChannel<SocketEvent>.await(
    what: String,
    timeout: Duration = 10.seconds,
    predicate: (SocketEvent) -> Boolean,
): SocketEvent {
    val seen = mutableListOf<SocketEvent>()
    return withTimeoutOrNull(timeout) {
        for (event in this@await) {
            if (predicate(event)) return@withTimeoutOrNull event
            seen += event
        }
        null
    } ?: throw AssertionError("no $what within $timeout; saw ${seen.map(::brief)}")
}

/** Read events until each predicate matched one (in any order); the matches, in predicate order. */
private suspend fun ReceiveChannel<SocketEvent>.awaitAll(
    vararg wanted: Pair<String, (SocketEvent) -> Boolean>,
    timeout: Duration = 10.seconds,
): List<SocketEvent> {
    val found = arrayOfNulls<SocketEvent>(wanted.size)
    val seen = mutableListOf<SocketEvent>()
    withTimeoutOrNull(timeout) {
        for (event in this@awaitAll) {
            val index = wanted.indices.firstOrNull { found[it] == null && wanted[it].second(event) }
            if (index == null) seen += event else found[index] = event
            if (found.all { it != null }) break
        }
    }
    val missing = wanted.indices.filter { found[it] == null }.map { wanted[it].first }
    if (missing.isNotEmpty()) throw AssertionError("no $missing within $timeout; saw ${seen.map(::brief)}")
    return found.map { it!! }
}

private fun checkEcho(echo: SocketEvent.Message, json: String) {
    assertEquals(MessageData.Json(json), echo.data)
    assertEquals(json, echo.data.text)
    assertEquals(1uL, echo.seq)
    assertNotNull(echo.ts)
}

private fun brief(event: SocketEvent): String = when (event) {
    is SocketEvent.StateChanged -> "StateChanged(${event.state})"
    else -> event.toString()
}

private fun isState(event: SocketEvent, predicate: (SocketState) -> Boolean) =
    event is SocketEvent.StateChanged && predicate(event.state)

@Timeout(90)
class SteadyWebSocketTest {
    @Test
    fun `connect, send until acked, receive on every collector and on another client`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            SteadyWebSocket(quick(server.url)).use { alice ->
                SteadyWebSocket(quick(server.url)).use { bob ->
                    val aliceFirst = record(alice)
                    val aliceSecond = record(alice) // a second collector of the same socket
                    val bobEvents = record(bob)
                    alice.connect()
                    bob.connect()
                    withTimeout(10.seconds) {
                        alice.awaitOpen()
                        bob.awaitOpen()
                    }
                    assertEquals(SocketState.Open, alice.state.value)

                    val json = """{"text":"hello from kotlin","n":1}"""
                    val id = withTimeout(10.seconds) { alice.send(json) }
                    assertTrue(id.isNotEmpty())
                    assertEquals(1uL, alice.stats().messagesAcked)
                    assertEquals(0uL, alice.stats().outboxLen)

                    // The ack is also an event, and the server fans the message out to everyone,
                    // the sender included: each collector sees both (in either order).
                    for (events in listOf(aliceFirst, aliceSecond)) {
                        val (_, echo) = events.awaitAll(
                            "Acked" to { e: SocketEvent -> e is SocketEvent.Acked && e.id == id },
                            "echo" to { e: SocketEvent -> e is SocketEvent.Message && e.id == id },
                        )
                        checkEcho(echo as SocketEvent.Message, json)
                    }
                    checkEcho(bobEvents.await("echo on bob") { it is SocketEvent.Message && it.id == id } as SocketEvent.Message, json)

                    // The non-suspending variant: an id now, the Acked event later.
                    val queued = bob.enqueue("""{"text":"hi alice"}""")
                    bobEvents.await("Acked for bob") { it is SocketEvent.Acked && it.id == queued }
                    val down = aliceFirst.await("bob's message") { it is SocketEvent.Message && it.id == queued }
                    assertEquals(2uL, (down as SocketEvent.Message).seq)
                    assertEquals(2uL, alice.stats().lastSeq)
                }
            }
        }
    }

    @Test
    fun `state changes arrive as events and in the state flow`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            SteadyWebSocket(quick(server.url)).use { ws ->
                assertEquals(SocketState.Idle, ws.state.value)
                val events = record(ws)
                ws.connect()
                val connecting = events.await("Connecting") { isState(it) { s -> s is SocketState.Connecting } }
                assertEquals(SocketState.Connecting(1u), (connecting as SocketEvent.StateChanged).state)
                events.await("Open") { isState(it) { s -> s == SocketState.Open } }
                withTimeout(5.seconds) { ws.awaitOpen() }
                assertEquals(SocketState.Open, ws.state.value)

                ws.disconnect()
                events.await("Closed") { isState(it) { s -> s == SocketState.Closed } }
                withTimeout(5.seconds) { ws.state.first { it == SocketState.Closed } }

                // connect() after disconnect() starts over.
                ws.connect()
                events.await("Open again") { isState(it) { s -> s == SocketState.Open } }
                withTimeout(5.seconds) { ws.state.first { it == SocketState.Open } }
                assertEquals("SteadyWebSocket(state=open)", ws.toString())
            }
        }
    }

    @Test
    fun `errors are exceptions and connection problems name the cause`(): Unit = runBlocking {
        // An http:// URL is refused at construction, with the ws:// form to use.
        val invalid = assertThrows(SteadyException.InvalidUrl::class.java) {
            SteadyWebSocket("http://127.0.0.1:9/ws")
        }
        // Flat error: the message is the plain explanation, with nothing prefixed.
        val explanation = invalid.message!!
        assertTrue(explanation.contains("ws://127.0.0.1:9/ws"), explanation)
        assertFalse(explanation.startsWith("message="), explanation)

        // A port nobody listens on: ConnectionLost with kind REFUSED, naming host:port.
        val port = ServerProcess.freePort()
        SteadyWebSocket(quick("ws://127.0.0.1:$port/ws")).use { ws ->
            val events = record(ws)
            ws.connect()
            val lost = events.await("ConnectionLost") { it is SocketEvent.ConnectionLost } as SocketEvent.ConnectionLost
            assertEquals(ConnectionErrorKind.REFUSED, lost.problem.kind, lost.problem.message)
            assertEquals(null, lost.problem.httpStatus)
            assertTrue(lost.problem.message.contains("127.0.0.1:$port"), lost.problem.message)
            events.await("Reconnecting") { isState(it) { s -> s is SocketState.Reconnecting } }

            // Send-time errors are SteadyException subclasses.
            val notJson = assertThrows(SteadyException.NotJson::class.java) { ws.enqueue("not json") }
            assertTrue(!notJson.message.isNullOrBlank(), "NotJson explains the parse error")
            assertThrows(IllegalArgumentException::class.java) { ws.enqueue("1", ttl = Duration.ZERO) }

            // A send that cannot be acknowledged in time throws SendFailedException.
            val failed = runCatching { withTimeout(10.seconds) { ws.send("""{"late":true}""", ttl = 200.milliseconds) } }
            val error = assertInstanceOf(SendFailedException::class.java, failed.exceptionOrNull())
            assertEquals(SendFailureKind.EXPIRED, error.reason)
            assertTrue(error.message!!.contains(" expired: "), error.message)
        }
    }

    @Test
    fun `close ends the event flow and fails pending sends`(): Unit = runBlocking {
        val port = ServerProcess.freePort()
        val parent = Job()
        val ws = SteadyWebSocket(quick("ws://127.0.0.1:$port/ws"), Dispatchers.Default + parent)
        val collected = async(start = CoroutineStart.UNDISPATCHED) { ws.events.collect { } }
        ws.connect()
        val pending = async(start = CoroutineStart.UNDISPATCHED) { runCatching { ws.send("""{"never":"acked"}""") } }
        ws.use { } // AutoCloseable
        assertInstanceOf(SocketClosedException::class.java, withTimeout(5.seconds) { pending.await() }.exceptionOrNull())
        withTimeout(5.seconds) { collected.await() } // the flow completed
        assertThrows(SocketClosedException::class.java) { ws.enqueue("{}") }
        assertInstanceOf(SocketClosedException::class.java, runCatching { ws.send("{}") }.exceptionOrNull())
        // A collector that starts after close completes at once instead of hanging.
        withTimeout(5.seconds) { ws.events.collect { } }
        ws.close() // idempotent
        // close() shut the native socket down, so its pending nextEvent() returned null and the
        // event coroutine ended by itself (nothing left running under the parent job).
        parent.complete()
        withTimeout(5.seconds) { parent.join() }

        // The same for a socket that never connected: no event would ever wake its nextEvent().
        val idleParent = Job()
        SteadyWebSocket(quick("ws://127.0.0.1:$port/ws"), Dispatchers.Default + idleParent).use { }
        idleParent.complete()
        withTimeout(5.seconds) { idleParent.join() }
    }

    @Test
    fun `background disconnects after the grace period and foreground reconnects`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            val options = quick(server.url) {
                background = BackgroundMode.DISCONNECT_AFTER_GRACE
                backgroundGraceMs = 300u
            }
            SteadyWebSocket(options).use { ws ->
                val events = record(ws)
                ws.connect()
                withTimeout(10.seconds) { ws.awaitOpen() }
                ws.onBackground()
                events.await("Suspended") { isState(it) { s -> s == SocketState.Suspended } }
                // Queued while suspended, delivered after foreground.
                val queued = ws.enqueue("""{"from":"background"}""")
                delay(300)
                assertEquals(SocketState.Suspended, ws.state.value, "no reconnect while in the background")
                ws.onForeground()
                events.await("Open after foreground") { isState(it) { s -> s == SocketState.Open } }
                events.await("ack of the queued message") { it is SocketEvent.Acked && it.id == queued }
            }
        }
    }

    @Test
    fun `no attempts while the network is gone and one at once when it returns`(): Unit = runBlocking {
        val port = ServerProcess.freePort()
        SteadyWebSocket(quick("ws://127.0.0.1:$port/ws") { backoffInitialMs = 5_000u; backoffMaxMs = 10_000u }).use { ws ->
            val events = record(ws)
            ws.connect()
            events.await("Reconnecting") { isState(it) { s -> s is SocketState.Reconnecting } }
            ws.onNetworkLost()
            events.await("WaitingForNetwork") { isState(it) { s -> s == SocketState.WaitingForNetwork } }
            ServerProcess.start("127.0.0.1:$port").use {
                val started = System.nanoTime()
                ws.onNetworkAvailable("wifi")
                // The backoff says 5 s; the network hint attempts at once.
                events.await("Open", timeout = 3.seconds) { isState(it) { s -> s == SocketState.Open } }
                val took = (System.nanoTime() - started) / 1_000_000
                assertTrue(took < 2_000, "open after $took ms")
            }
        }
    }

    @Test
    fun `states print as sentences and compare by value`() {
        assertEquals("open", SocketState.Open.toString())
        assertEquals("idle", SocketState.Idle.toString())
        assertEquals("connecting (attempt 2)", SocketState.Connecting(2u).toString())
        assertEquals("reconnecting (attempt 3 in 400 ms)", SocketState.Reconnecting(3u, 400uL).toString())
        assertEquals("gave up", SocketState.Failed("gave up", true).toString())
        assertEquals(SocketState.Connecting(2u), SocketState.Connecting(2u))
        assertEquals(SocketState.Connecting(2u).hashCode(), SocketState.Connecting(2u).hashCode())
        assertFalse(SocketState.Connecting(2u) == SocketState.Connecting(3u))
        assertEquals(setOf(SocketState.Open, SocketState.Closed), setOf(SocketState.Open, SocketState.Closed, SocketState.Open))
    }

    @Test
    fun `shutdown makes a pending nextEvent return null`(): Unit = runBlocking {
        // The generated object directly: an idle socket has no events, so nextEvent() waits.
        SteadySocket(quick("ws://127.0.0.1:${ServerProcess.freePort()}/ws")).use { socket ->
            val pending = async(Dispatchers.Default) { socket.nextEvent() }
            delay(300)
            assertFalse(pending.isCompleted, "nextEvent() returned on an idle socket")
            socket.shutdown()
            assertEquals(null, withTimeout(5.seconds) { pending.await() })
            // The stream stays ended.
            assertEquals(null, withTimeout(5.seconds) { socket.nextEvent() })
        }

        // An open socket: shutdown closes the connection and the stream ends (after any final
        // state events), and it does not reconnect.
        ServerProcess.start().use { server ->
            SteadySocket(quick(server.url)).use { socket ->
                socket.connect()
                withTimeout(10.seconds) {
                    while (true) {
                        val event = socket.nextEvent()
                        if (event is SocketEvent.StateChanged && event.state == SocketState.Open) break
                    }
                }
                val pending = async(Dispatchers.Default) { socket.nextEvent() }
                delay(300)
                socket.shutdown()
                val tail = withTimeout(5.seconds) {
                    buildList {
                        var event = pending.await()
                        while (event != null) {
                            add(event)
                            event = socket.nextEvent()
                        }
                    }
                }
                assertTrue(tail.all { it is SocketEvent.StateChanged }, "after shutdown: $tail")
                assertFalse(socket.state() is SocketState.Connecting || socket.state() is SocketState.Reconnecting, "state ${socket.state()}")
            }
        }
    }

    @Test
    fun `server SIGKILLed and restarted with its data dir loses and duplicates nothing`(): Unit = runBlocking {
        val dataDir = Files.createTempDirectory("steadyws-kotlin-kill").toFile()
        var server: ServerProcess? = ServerProcess.start("127.0.0.1:0", "--data-dir", dataDir.path)
        val listen = server!!.listen
        try {
            SteadyWebSocket(quick(server.url)).use { alice ->
                SteadyWebSocket(quick(server.url)).use { bob ->
                    val acked = mutableListOf<String>()
                    val failed = mutableListOf<SocketEvent>()
                    val aliceSeen = mutableListOf<Pair<ULong, String>>()
                    val bobSeen = mutableListOf<Pair<ULong, String>>()
                    for ((ws, seen) in listOf(alice to aliceSeen, bob to bobSeen)) {
                        launch(start = CoroutineStart.UNDISPATCHED) {
                            ws.events.collect { event ->
                                when (event) {
                                    is SocketEvent.Acked -> acked += event.id
                                    is SocketEvent.SendFailed -> failed += event
                                    is SocketEvent.Message -> seen += event.seq!! to event.id!!
                                    else -> Unit
                                }
                            }
                        }
                    }
                    alice.connect()
                    bob.connect()
                    withTimeout(10.seconds) {
                        alice.awaitOpen()
                        bob.awaitOpen()
                    }
                    val sent = mutableListOf<String>()
                    var suspendedSend: kotlinx.coroutines.Deferred<String>? = null
                    for (i in 0 until 120) {
                        // Alice and Bob both write up; each reads the whole stream down.
                        sent += alice.enqueue("""{"from":"alice","n":$i}""")
                        sent += bob.enqueue("""{"from":"bob","n":$i}""")
                        if (i == 50) server!!.kill().also { server = null }
                        if (i == 60) {
                            // A suspending send issued while the server is dead returns after the restart.
                            suspendedSend = async { alice.send("""{"from":"alice","while":"down"}""") }
                        }
                        if (i == 70) server = ServerProcess.start(listen, "--data-dir", dataDir.path)
                        delay(15)
                    }
                    val total = sent.size + 1
                    val lateId = withTimeout(30.seconds) { suspendedSend!!.await() }
                    sent += lateId
                    withTimeout(30.seconds) {
                        while (aliceSeen.size < total || bobSeen.size < total || acked.size < total) delay(50)
                    }
                    delay(300) // anything extra (a duplicate) would arrive now
                    assertTrue(failed.isEmpty(), "failed sends: $failed")
                    // Up: every message acknowledged exactly once.
                    assertEquals(total, acked.size, "acks")
                    assertEquals(sent.toSet(), acked.toSet(), "acked ids")
                    assertEquals(total, acked.toSet().size, "an id was acked twice")
                    // Down: both clients saw the whole stream once each, in seq order, each message once.
                    val expectedSeqs = (1..total).map { it.toULong() }
                    for ((name, seen) in listOf("alice" to aliceSeen, "bob" to bobSeen)) {
                        assertEquals(expectedSeqs, seen.map { it.first }, "$name: lost, duplicated or reordered")
                        assertEquals(sent.toSet(), seen.map { it.second }.toSet(), "$name: the stream holds each message once")
                    }
                    assertTrue(alice.stats().reconnects >= 1u, "alice reconnected")
                    assertTrue(bob.stats().reconnects >= 1u, "bob reconnected")
                    assertEquals(0uL, alice.stats().outboxLen)
                    assertFalse(alice.state.value is SocketState.Failed)
                }
            }
        } finally {
            server?.close()
            dataDir.deleteRecursively()
        }
    }

    @Test
    fun `calling a released socket throws instead of crashing`() {
        val raw = SteadySocket(quick("ws://127.0.0.1:9/ws"))
        raw.close() // the generated AutoCloseable: frees the native object
        assertThrows(IllegalStateException::class.java) { raw.send("""{"late":true}""") }
        assertThrows(IllegalStateException::class.java) { raw.state() }
        val wrapped = SteadyWebSocket(quick("ws://127.0.0.1:9/ws"))
        wrapped.close()
        wrapped.close() // closing twice is harmless
    }
}
