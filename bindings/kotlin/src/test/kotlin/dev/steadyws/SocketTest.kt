package dev.steadyws

import java.io.File
import java.nio.file.Files
import java.util.concurrent.Executors
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Deferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.async
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.ReceiveChannel
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout

/** Short timeouts, as in the Rust end-to-end suite. */
internal fun quick(url: String, configure: SocketConfig.() -> Unit = {}) = SocketConfig(
    url = url,
    backoffInitialMs = 100u,
    backoffMaxMs = 1000u,
    heartbeatIntervalMs = 500u,
    heartbeatTimeoutMs = 500u,
).apply(configure)

/** Collect [ws]'s events from now on into a channel the test reads (it is the socket's one collector). */
internal fun CoroutineScope.record(ws: Socket): ReceiveChannel<SocketEvent> {
    val channel = Channel<SocketEvent>(Channel.UNLIMITED)
    launch(start = CoroutineStart.UNDISPATCHED) {
        try {
            ws.events.collect { channel.send(it) }
            channel.close()
        } catch (e: Throwable) {
            channel.close(e)
            throw e
        }
    }
    return channel
}

/** The next event matching [predicate], skipping others; fails after [timeout]. */
internal suspend fun ReceiveChannel<SocketEvent>.await(
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
    assertEquals(ResumeCursor(echo.seq, echo.ts), echo.cursor)
}

private fun causeName(cause: StateCause): String = when (cause) {
    is StateCause.AttemptFailed -> "AttemptFailed(${cause.problem.kind})"
    is StateCause.ConnectionDropped -> "ConnectionDropped(${cause.problem.kind})"
    else -> cause::class.simpleName ?: cause.toString()
}

private fun brief(event: SocketEvent): String = when (event) {
    is SocketEvent.StateChanged -> "StateChanged(${event.state}, ${causeName(event.cause)})"
    is SocketEvent.Message -> "Message(seq=${event.seq})"
    else -> event.toString()
}

private fun isState(event: SocketEvent, predicate: (SocketState) -> Boolean) =
    event is SocketEvent.StateChanged && predicate(event.state)

/**
 * A second client that publishes [count] JSON messages through the server (which fans them out
 * to every client) and returns their ids in the order sent, once the server acknowledged all.
 */
internal suspend fun CoroutineScope.publish(url: String, count: Int, tag: String): List<String> {
    val options = quick(url) {
        outboxMaxMessages = (count + 16).toUInt()
        outboxMaxBytes = 64uL shl 20
    }
    return Socket(options).use { publisher ->
        val acked = HashSet<String>()
        val allAcked = CompletableDeferred<Unit>()
        // The publisher reads its own events (acks, and the echoes of its messages).
        val reader = launch {
            publisher.events.collect { event ->
                when (event) {
                    is SocketEvent.Acked -> if (acked.add(event.id) && acked.size == count) allAcked.complete(Unit)
                    is SocketEvent.SendFailed -> allAcked.completeExceptionally(AssertionError("publish failed: $event"))
                    else -> Unit
                }
            }
        }
        publisher.connect()
        val ids = List(count) { publisher.send("""{"from":"$tag","n":$it}""") }
        withTimeout(90.seconds) { allAcked.await() }
        reader.cancelAndJoin()
        assertEquals(ids.toSet(), acked, "acks of the published messages")
        ids
    }
}

/** OS threads of this process (JVM and native), from /proc. */
private fun osThreads(): Int = File("/proc/self/task").list()!!.size

/** Heap in use after a full collection: what is live, not what awaits collection. */
private fun heapAfterGc(): Long {
    val runtime = Runtime.getRuntime()
    repeat(2) { System.gc() }
    return runtime.totalMemory() - runtime.freeMemory()
}

/** Resident memory of this process in KiB, from /proc. */
private fun rssKiB(): Long = File("/proc/self/status").readLines()
    .first { it.startsWith("VmRSS:") }.split(Regex("\\s+"))[1].toLong()

@Timeout(90)
class SocketTest {
    // ---- the seven scenarios of bindings/README.md ---------------------------------------------

    @Test
    fun `scenario 1, a late subscriber gets every message in order and stats count only what it took`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            Socket(quick(server.url)).use { ws ->
                ws.connect()
                withTimeout(10.seconds) { ws.waitOpen() }
                val n = 50
                val ids = publish(server.url, n, "late")
                // The messages reach the socket while nobody collects: they wait, uncommitted.
                withTimeout(10.seconds) { while (ws.stats().messagesReceived < n.toULong()) delay(20) }
                val before = ws.stats()
                assertEquals(n.toULong(), before.messagesReceived)
                assertEquals(0uL, before.messagesIn, "nothing was taken yet")
                // The cursor is still where the connection started: the stream's head then (empty: 0).
                assertEquals(0uL, before.lastSeq, "the cursor has not moved")

                // Start reading now: everything since the socket was created is there, in order.
                val seen = mutableListOf<SocketEvent>()
                withTimeout(10.seconds) {
                    ws.events.first { event -> seen += event; seen.count { it is SocketEvent.Message } == n }
                }
                val states = seen.filterIsInstance<SocketEvent.StateChanged>()
                assertEquals(listOf(SocketState.Connecting(1u), SocketState.Open), states.map { it.state }, "${seen.map(::brief)}")
                assertInstanceOf(StateCause.App::class.java, states[0].cause)
                assertInstanceOf(StateCause.Opened::class.java, states[1].cause)
                val messages = seen.filterIsInstance<SocketEvent.Message>()
                assertEquals(ids, messages.map { it.id }, "every published message, in order")
                assertEquals((1..n).map { it.toULong() }, messages.map { it.seq })
                messages.forEach { assertEquals(it.seq, it.cursor.lastSeq) }
                val after = ws.stats()
                assertEquals(n.toULong(), after.messagesIn, "stats count what the app took")
                assertEquals(n.toULong(), after.lastSeq)
                assertEquals(messages.last().cursor, ResumeCursor(after.lastSeq, after.lastTs))
            }
        }
    }

    @Test
    @Timeout(240)
    fun `scenario 2, a slow consumer is pushed back, never dropped, and the connection stays up`(): Unit = runBlocking {
        val total = 5_000
        val inbox = 200u
        ServerProcess.start().use { server ->
            Socket(quick(server.url) { inboxMaxEvents = inbox }).use { ws ->
                ws.connect()
                withTimeout(10.seconds) { ws.waitOpen() }
                val runtime = Runtime.getRuntime()
                val heapBefore = heapAfterGc()
                val rssBefore = rssKiB()
                var peakHeap = 0L
                var peakRss = 0L
                val notOpen = mutableListOf<SocketState>()
                val sampler = launch(Dispatchers.Default) {
                    while (isActive) {
                        peakHeap = maxOf(peakHeap, runtime.totalMemory() - runtime.freeMemory())
                        peakRss = maxOf(peakRss, rssKiB())
                        val state = ws.state
                        if (state != SocketState.Open) synchronized(notOpen) { notOpen += state }
                        delay(20)
                    }
                }
                // Nobody collects ws.events while the server publishes everything.
                val started = System.nanoTime()
                val ids = publish(server.url, total, "slow")
                val elapsed = (System.nanoTime() - started) / 1_000_000
                if (elapsed < 3_000) delay(3_000 - elapsed)
                val paused = ws.stats()
                val heapPaused = heapAfterGc()
                println(
                    "slow consumer: while not collecting: received=${paused.messagesReceived} taken=${paused.messagesIn} " +
                        "(inbox $inbox), publish took $elapsed ms, live JVM heap ${heapBefore / 1024} -> ${heapPaused / 1024} KiB",
                )
                assertTrue(heapPaused - heapBefore < 64L shl 20, "live heap grew by ${(heapPaused - heapBefore) shr 20} MiB")
                assertEquals(0uL, paused.messagesIn, "nothing is committed before the app takes it")
                assertTrue(paused.messagesReceived < total.toULong(), "the socket stopped reading (received ${paused.messagesReceived})")
                assertEquals(SocketState.Open, ws.state)

                // Now consume everything.
                val messages = ArrayList<SocketEvent.Message>(total)
                val states = mutableListOf<SocketEvent.StateChanged>()
                withTimeout(120.seconds) {
                    ws.events.first { event ->
                        when (event) {
                            is SocketEvent.Message -> messages += event
                            is SocketEvent.StateChanged -> states += event
                            else -> Unit
                        }
                        messages.size == total
                    }
                }
                // Nothing more arrives: no duplicate, no replay.
                val extra = withTimeoutOrNull(500.milliseconds) { ws.messages.first() }
                sampler.cancelAndJoin()
                println(
                    "slow consumer: delivered=${messages.size} published=$total " +
                        "peak JVM heap used=${peakHeap / (1 shl 20)} MiB, peak RSS=${peakRss / 1024} MiB " +
                        "(RSS before ${rssBefore / 1024} MiB)",
                )
                assertNull(extra, "a message arrived twice or unexpectedly: ${extra?.let(::brief)}")
                assertEquals(listOf(SocketState.Connecting(1u), SocketState.Open), states.map { it.state }, "the state never left Open")
                assertTrue(notOpen.isEmpty(), "the state left Open meanwhile: $notOpen")
                assertEquals((1..total).map { it.toULong() }, messages.map { it.seq }, "exactly once, in order")
                assertEquals(ids, messages.map { it.id })
                val stats = ws.stats()
                assertEquals(total.toULong(), stats.messagesIn)
                assertEquals(total.toULong(), stats.messagesReceived)
                assertEquals(0uL, stats.reconnects, "the connection was never torn down")
            }
        }
    }

    @Test
    fun `scenario 3, waiting for open and for acks keeps every event`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            Socket(quick(server.url)).use { ws ->
                ws.connect()
                withTimeout(10.seconds) { ws.waitOpen() }
                withTimeout(5.seconds) { ws.waitOpen() } // open already: returns at once
                val json = """{"text":"waited"}"""
                val id = withTimeout(10.seconds) { ws.sendAndWait(json) }
                withTimeout(1.seconds) { ws.waitAcked(id) } // remembered: returns at once

                // The waits took nothing: the stream still has the states, the ack and the echo.
                val seen = mutableListOf<SocketEvent>()
                withTimeout(10.seconds) {
                    ws.events.first { event ->
                        seen += event
                        seen.any { it is SocketEvent.Acked } && seen.any { it is SocketEvent.Message }
                    }
                }
                val states = seen.filterIsInstance<SocketEvent.StateChanged>()
                assertEquals(listOf(SocketState.Connecting(1u), SocketState.Open), states.map { it.state }, "${seen.map(::brief)}")
                assertEquals(listOf(SocketEvent.Acked(id)), seen.filterIsInstance<SocketEvent.Acked>())
                val echo = seen.filterIsInstance<SocketEvent.Message>().single()
                assertEquals(id, echo.id)
                checkEcho(echo, json)
            }
        }
    }

    @Test
    fun `scenario 4, send returns the id at once and sendAndWait after the ack`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            Socket(quick(server.url)).use { ws ->
                // Not even connected: send still queues and returns the id.
                val early = ws.send("""{"n":1}""")
                assertTrue(early.isNotEmpty())
                assertEquals(1uL, ws.stats().outboxLen)
                assertEquals(0uL, ws.stats().messagesAcked)
                // sendAndWait waits for the ack, which cannot come before connect().
                val timedOut = runCatching { ws.sendAndWait("""{"n":2}""", timeout = 300.milliseconds) }.exceptionOrNull()
                val timeout = assertKind(ErrorKind.TIMED_OUT, timedOut)
                val timedOutId = timeout.messageId!!
                assertEquals(2uL, ws.stats().outboxLen, "a timed-out message stays queued")

                ws.connect()
                val third = withTimeout(10.seconds) { ws.sendAndWait("""{"n":3}""") }
                // Returned after the server stored it; the earlier ones went first (same order).
                withTimeout(1.seconds) {
                    ws.waitAcked(early)
                    ws.waitAcked(timedOutId)
                    ws.waitAcked(third)
                }
                assertEquals(0uL, ws.stats().outboxLen)
                assertEquals(3uL, ws.stats().messagesAcked)
                val acks = withTimeout(10.seconds) {
                    ws.events.take(2 + 3 + 3).toList() // Connecting, Open, three acks, three echoes
                }
                assertEquals(listOf(early, timedOutId, third), acks.filterIsInstance<SocketEvent.Acked>().map { it.id }, acks.map(::brief).toString())
                assertEquals(listOf(early, timedOutId, third), acks.filterIsInstance<SocketEvent.Message>().map { it.id })
            }
        }
    }

    @Test
    fun `scenario 5, close fails every waiter at once, ends the stream, and the state is Closed`(): Unit = runBlocking {
        val port = ServerProcess.freePort() // nothing listens: the socket never opens
        val parent = Job()
        val ws = Socket(quick("ws://127.0.0.1:$port/ws"), parent)
        val events = record(ws)
        ws.connect()
        events.await("Reconnecting") { isState(it) { s -> s is SocketState.Reconnecting } }
        val queued = ws.send("""{"never":"acked"}""")
        val waits: List<Deferred<Throwable?>> = listOf(
            async { runCatching { ws.waitOpen() }.exceptionOrNull() },
            async { runCatching { ws.sendAndWait("""{"also":"never"}""") }.exceptionOrNull() },
            async { runCatching { ws.waitAcked(queued) }.exceptionOrNull() },
        )
        delay(300)
        assertTrue(waits.none { it.isCompleted }, "the waits wait")

        val started = System.nanoTime()
        ws.close()
        assertEquals(SocketState.Closed, ws.state)
        val errors = withTimeout(2.seconds) { waits.map { it.await() } }
        val took = (System.nanoTime() - started) / 1_000_000
        assertTrue(took < 1_000, "the waits failed after $took ms")
        errors.forEach { assertKind(ErrorKind.CLOSED, it) }
        assertEquals(queued, (errors[2] as SteadyWsException).messageId)

        // The running collector got the events queued until the close, then its flow completed.
        val tail = withTimeout(5.seconds) { buildList { for (event in events) add(event) } }
        val last = tail.filterIsInstance<SocketEvent.StateChanged>().last()
        assertEquals(SocketState.Closed, last.state, tail.map(::brief).toString())
        assertInstanceOf(StateCause.App::class.java, last.cause)

        // Nothing waits on a closed socket.
        withTimeout(2.seconds) {
            assertKind(ErrorKind.CLOSED, runCatching { ws.waitOpen() }.exceptionOrNull())
            assertKind(ErrorKind.CLOSED, runCatching { ws.sendAndWait("{}") }.exceptionOrNull())
            assertKind(ErrorKind.CLOSED, runCatching { ws.waitAcked(queued) }.exceptionOrNull())
            ws.events.collect { throw AssertionError("an event after close: $it") } // completes at once
        }
        assertThrowsKind(ErrorKind.CLOSED) { ws.send("{}") }
        ws.connect() // commands after close are ignored
        assertEquals(SocketState.Closed, ws.state)
        ws.setAppState(AppState.FOREGROUND) // hints after close are ignored
        ws.setNetwork(NetworkStatus.Unavailable)
        ws.disconnect()
        ws.close() // idempotent
        assertEquals("Socket(state=closed)", ws.toString())
        // The socket leaves nothing running under the parent job.
        parent.complete()
        withTimeout(5.seconds) { parent.join() }

        // A socket nobody collected closes as promptly, and a collection started after close()
        // still gets the events that were queued (ending with Closed), then completes.
        val idleParent = Job()
        val idle = Socket(quick("ws://127.0.0.1:$port/ws"), idleParent)
        idle.connect()
        val idleWait = async { runCatching { idle.waitOpen() }.exceptionOrNull() }
        delay(300)
        idle.use { }
        assertKind(ErrorKind.CLOSED, withTimeout(2.seconds) { idleWait.await() })
        idleParent.complete()
        withTimeout(5.seconds) { idleParent.join() }
        val queuedAtClose = withTimeout(5.seconds) { idle.events.toList() }
        val states = queuedAtClose.filterIsInstance<SocketEvent.StateChanged>()
        assertEquals(SocketState.Connecting(1u), states.first().state, queuedAtClose.map(::brief).toString())
        assertEquals(SocketState.Closed, states.last().state)
        assertInstanceOf(StateCause.App::class.java, states.last().cause)
        assertEquals(emptyList<SocketEvent>(), withTimeout(2.seconds) { idle.events.toList() }, "the stream stays ended")
    }

    @Test
    fun `scenario 6, every state change carries its cause`(): Unit = runBlocking {
        // Refused: each failed attempt is told apart from a dropped connection.
        val port = ServerProcess.freePort()
        Socket(quick("ws://127.0.0.1:$port/ws")).use { ws ->
            val events = record(ws)
            ws.connect()
            val connecting = events.await("Connecting") { isState(it) { s -> s is SocketState.Connecting } } as SocketEvent.StateChanged
            assertInstanceOf(StateCause.App::class.java, connecting.cause)
            val refused = events.await("Reconnecting") { isState(it) { s -> s is SocketState.Reconnecting } } as SocketEvent.StateChanged
            val attempt = assertInstanceOf(StateCause.AttemptFailed::class.java, refused.cause)
            assertEquals(ConnectionErrorKind.REFUSED, attempt.problem.kind, attempt.problem.message)
            assertTrue(attempt.problem.message.contains("127.0.0.1:$port"), attempt.problem.message)
            val retry = events.await("Connecting again") { isState(it) { s -> s is SocketState.Connecting } } as SocketEvent.StateChanged
            assertInstanceOf(StateCause.RetryDue::class.java, retry.cause)
        }

        // Dropped: an open connection whose server dies, then attempts that fail, then close().
        val server = ServerProcess.start()
        try {
            Socket(quick(server.url)).use { ws ->
                val events = record(ws)
                ws.connect()
                val open = events.await("Open") { isState(it) { s -> s == SocketState.Open } } as SocketEvent.StateChanged
                assertInstanceOf(StateCause.Opened::class.java, open.cause)
                server.kill()
                val dropped = events.await("Reconnecting after the drop") { isState(it) { s -> s is SocketState.Reconnecting } } as SocketEvent.StateChanged
                val drop = assertInstanceOf(StateCause.ConnectionDropped::class.java, dropped.cause, brief(dropped))
                assertTrue(drop.problem.message.isNotBlank())
                val next = events.await("a failed attempt") { isState(it) { s -> s is SocketState.Reconnecting } } as SocketEvent.StateChanged
                val failed = assertInstanceOf(StateCause.AttemptFailed::class.java, next.cause, brief(next))
                assertEquals(ConnectionErrorKind.REFUSED, failed.problem.kind, failed.problem.message)

                ws.close()
                val tail = withTimeout(5.seconds) { buildList { for (event in events) add(event) } }
                val closed = tail.filterIsInstance<SocketEvent.StateChanged>().last()
                assertEquals(SocketState.Closed, closed.state, tail.map(::brief).toString())
                assertInstanceOf(StateCause.App::class.java, closed.cause)
            }
        } finally {
            server.close()
        }
    }

    @Test
    fun `scenario 9, one reader, and a cancelled reader frees the socket for the next`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            Socket(quick(server.url)).use { ws ->
                ws.connect()
                withTimeout(10.seconds) { ws.waitOpen() }
                withTimeout(10.seconds) { ws.events.first { it is SocketEvent.StateChanged && it.state == SocketState.Open } }
                // The first reader waits for events (none come); a second read is refused at once.
                val first = launch(Dispatchers.Default) { ws.events.collect { } }
                delay(300)
                assertKind(ErrorKind.ALREADY_READING, runCatching { withTimeout(5.seconds) { ws.events.first() } }.exceptionOrNull())
                // Once the first reader is cancelled, a new one starts at once and gets the next message.
                first.cancelAndJoin()
                val next = async(Dispatchers.Default) {
                    withTimeout(15.seconds) { ws.events.first { it is SocketEvent.Message } as SocketEvent.Message }
                }
                val ids = publish(server.url, 1, "next")
                assertEquals(ids, listOf(next.await().id))
            }
        }
    }

    @Test
    fun `scenario 10, one kind per situation`(): Unit = runBlocking {
        assertThrowsKind(ErrorKind.INVALID_URL) { Socket("http://127.0.0.1:9/ws") }
        val ws = Socket(quick("ws://127.0.0.1:${ServerProcess.freePort()}/ws"))
        assertThrowsKind(ErrorKind.NOT_JSON) { ws.send("not json") }
        val deep = assertThrowsKind(ErrorKind.NOT_JSON) { ws.send("[".repeat(65) + "]".repeat(65)) }
        assertTrue(deep.message!!.contains("nested deeper than 64 levels"), deep.message)
        assertEquals(emptyList<String>(), ws.pending().map { it.id })
        assertKind(ErrorKind.UNKNOWN_MESSAGE, runCatching { ws.waitAcked("never-sent", 1.seconds) }.exceptionOrNull())
        ws.close()
        assertKind(ErrorKind.CLOSED, runCatching { ws.waitOpen(1.seconds) }.exceptionOrNull())
    }

    @Test
    fun `scenario 11, sendAndWait with a ttl fails as expired, without one it times out`(): Unit = runBlocking {
        Socket(quick("ws://127.0.0.1:${ServerProcess.freePort()}/ws")).use { ws ->
            ws.connect()
            val started = System.nanoTime()
            val expired = assertKind(
                ErrorKind.SEND_FAILED,
                runCatching { ws.sendAndWait("""{"n":1}""", ttl = 300.milliseconds, timeout = 10.seconds) }.exceptionOrNull(),
            )
            assertEquals(SendFailureKind.EXPIRED, expired.sendFailure)
            assertNotNull(expired.messageId)
            assertTrue((System.nanoTime() - started) / 1_000_000 < 5_000, "the ttl, not the timeout, ended it")
            val timedOut = assertKind(
                ErrorKind.TIMED_OUT,
                runCatching { ws.sendAndWait("""{"n":2}""", timeout = 300.milliseconds) }.exceptionOrNull(),
            )
            assertEquals(listOf(timedOut.messageId), ws.pending().map { it.id }, "still pending")
        }
    }

    @Test
    fun `scenario 12, a silent server is noticed while sending`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            // The idle heartbeat alone would take 15 s: only unanswered writes can notice in time.
            val config = quick(server.url) {
                heartbeatIntervalMs = 10_000u
                heartbeatTimeoutMs = 5_000u
                ackProbeAfterMs = 500u
                probeTimeoutMs = 500u
            }
            Socket(config).use { ws ->
                val events = record(ws)
                ws.connect()
                events.await("Open") { isState(it) { s -> s == SocketState.Open } }
                val sent = mutableListOf(ws.send("""{"n":0}"""))
                withTimeout(10.seconds) { ws.waitAcked(sent[0]) }
                server.pause(true)
                val noticedMs = try {
                    val started = System.nanoTime()
                    val sender = launch {
                        while (true) {
                            sent += ws.send("""{"n":${sent.size}}""")
                            delay(50)
                        }
                    }
                    val left = events.await("leaving Open", 5.seconds) { isState(it) { s -> s != SocketState.Open } }
                    sender.cancelAndJoin()
                    val cause = (left as SocketEvent.StateChanged).cause
                    assertInstanceOf(StateCause.ConnectionDropped::class.java, cause, brief(left))
                    (System.nanoTime() - started) / 1_000_000
                } finally {
                    server.pause(false)
                }
                println("scenario 12: noticed after $noticedMs ms")
                // Under 2 s: the default wait (at least 2 s) would not pass, the configured 500 ms does.
                assertTrue(noticedMs < 2_000, "noticed after $noticedMs ms")
                withTimeout(20.seconds) { sent.forEach { ws.waitAcked(it) } }
                assertEquals(emptyList<String>(), ws.pending().map { it.id })
            }
        }
    }

    @Test
    fun `scenario 7, server SIGKILLed and restarted with its data dir loses and duplicates nothing`(): Unit = runBlocking {
        val dataDir = Files.createTempDirectory("steadyws-kotlin-kill").toFile()
        var server: ServerProcess? = ServerProcess.start("127.0.0.1:0", "--data-dir", dataDir.path)
        val listen = server!!.listen
        try {
            Socket(quick(server.url)).use { alice ->
                Socket(quick(server.url)).use { bob ->
                    val acked = mutableListOf<String>()
                    val failed = mutableListOf<SocketEvent>()
                    val aliceSeen = mutableListOf<Pair<ULong, String>>()
                    val bobSeen = mutableListOf<Pair<ULong, String>>()
                    for ((ws, seen) in listOf(alice to aliceSeen, bob to bobSeen)) {
                        launch {
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
                        alice.waitOpen()
                        bob.waitOpen()
                    }
                    val sent = mutableListOf<String>()
                    var waitingSend: Deferred<String>? = null
                    for (i in 0 until 120) {
                        // Alice and Bob both write up; each reads the whole stream down.
                        sent += alice.send("""{"from":"alice","n":$i}""")
                        sent += bob.send("""{"from":"bob","n":$i}""")
                        if (i == 50) server!!.kill().also { server = null }
                        if (i == 60) {
                            // A sendAndWait issued while the server is dead returns after the restart.
                            waitingSend = async { alice.sendAndWait("""{"from":"alice","while":"down"}""") }
                        }
                        if (i == 70) server = ServerProcess.start(listen, "--data-dir", dataDir.path)
                        delay(15)
                    }
                    val total = sent.size + 1
                    val lateId = withTimeout(30.seconds) { waitingSend!!.await() }
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
                    println("server restart: sent=$total acked=${acked.size} alice=${aliceSeen.size} bob=${bobSeen.size} lost=0 duplicated=0")
                    assertTrue(alice.stats().reconnects >= 1u, "alice reconnected")
                    assertTrue(bob.stats().reconnects >= 1u, "bob reconnected")
                    assertEquals(0uL, alice.stats().outboxLen)
                    assertFalse(alice.state is SocketState.Failed)
                }
            }
        } finally {
            server?.close()
            dataDir.deleteRecursively()
        }
    }

    // ---- the event stream ------------------------------------------------------------------------

    @Test
    fun `one collector at a time, and a stopped or cancelled collector leaves the rest to the next`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            Socket(quick(server.url)).use { ws ->
                ws.connect()
                withTimeout(10.seconds) { ws.events.first { isState(it) { s -> s == SocketState.Open } } }

                // A collector waiting for events; a second one (events or messages) is refused.
                val first = launch { ws.events.collect { } }
                delay(100) // its take has started
                val second = runCatching { ws.events.collect { } }.exceptionOrNull()
                assertKind(ErrorKind.ALREADY_READING, second)
                assertTrue(second!!.message!!.contains("one reader at a time"), second.message)
                assertKind(ErrorKind.ALREADY_READING, runCatching { ws.messages.collect { } }.exceptionOrNull())
                // Cancelled while it waits: its take ends, and the next collector starts at once.
                first.cancelAndJoin()

                val ids = publish(server.url, 20, "handover")
                val head = withTimeout(10.seconds) { ws.messages.take(5).toList() }
                val rest = withTimeout(10.seconds) { ws.messages.take(15).toList() }
                assertEquals(ids, (head + rest).map { it.id }, "nothing lost or repeated between collectors")
                assertEquals((1..20).map { it.toULong() }, (head + rest).map { it.seq })
            }
        }
    }

    @Test
    fun `collectors cancelled at any moment while messages flow lose and repeat nothing`(): Unit = runBlocking {
        // A take that Rust completes just as its collector is cancelled is the case to get
        // right: its batch must reach the next collector. Cancelling every few milliseconds while
        // messages arrive hits takes in every phase, with batches (no store) and one event per
        // take (a store, where a lost take would also be committed as read).
        val count = 1000
        val storeDir = Files.createTempDirectory("steadyws-kotlin-cancel").toFile()
        try {
            for (store in listOf(null, StoreConfig(storeDir))) {
                ServerProcess.start().use { server ->
                    Socket(quick(server.url) { this.store = store }).use { ws ->
                        ws.connect()
                        withTimeout(10.seconds) { ws.waitOpen() }
                        val publishing = async(Dispatchers.Default) { publish(server.url, count, "cancelled") }
                        val received = mutableListOf<SocketEvent.Message>()
                        val random = java.util.Random(19)
                        var collectors = 0
                        val read: suspend () -> Unit = { ws.events.collect { if (it is SocketEvent.Message) received += it } }
                        // Until all came, or nothing more came for a while after the last was published.
                        var progressAt = System.nanoTime()
                        while (received.size < count) {
                            val before = received.size
                            collectors++
                            withTimeoutOrNull(random.nextInt(1, 5).milliseconds) { read() }
                            if (received.size > before) {
                                progressAt = System.nanoTime()
                            } else if (publishing.isCompleted && System.nanoTime() - progressAt > 3_000_000_000L) {
                                break
                            }
                        }
                        val ids = withTimeout(60.seconds) { publishing.await() }
                        withTimeoutOrNull(300.milliseconds) { read() } // a repeat would come now
                        val kind = if (store == null) "no store" else "a store"
                        println("$count messages ($kind) read by $collectors collectors cancelled at random moments")
                        assertTrue(collectors > 20, "only $collectors collectors")
                        val got = received.map { it.id }
                        val lost = ids.toSet() - got.toSet()
                        val repeated = got.size - got.toSet().size
                        val seqs = received.map { it.seq!!.toLong() }.toSet()
                        val missing = (1L..count).filter { it !in seqs }
                        assertTrue(lost.isEmpty() && repeated == 0, "$kind: ${lost.size} lost and $repeated repeated across cancelled collectors; missing seqs (first 20) ${missing.take(20)}; stats ${ws.stats()}")
                        assertEquals(ids, got, "$kind: reordered")
                        assertEquals((1..count).map { it.toULong() }, received.map { it.seq })
                    }
                }
            }
        } finally {
            storeDir.deleteRecursively()
        }
    }

    @Test
    fun `watch gives the status now and each change, takes no event, and ends with Closed`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            Socket(quick(server.url)).use { ws ->
                val statuses = Channel<SocketStatus>(Channel.UNLIMITED)
                val watching = launch(Dispatchers.Default) { ws.watch().collect { statuses.send(it) } }
                assertEquals(SocketStatus(SocketState.Idle, 0uL), withTimeout(5.seconds) { statuses.receive() })
                ws.connect()
                withTimeout(10.seconds) { while (statuses.receive().state != SocketState.Open) Unit }
                // Any number of watches; one that starts now gets the status now.
                assertEquals(SocketStatus(SocketState.Open, 0uL), withTimeout(5.seconds) { ws.watch().first() })

                ws.close()
                withTimeout(5.seconds) {
                    while (statuses.receive().state != SocketState.Closed) Unit
                    watching.join() // the watch ended after Closed
                }
                // Watching took nothing from the stream: every state change is still there.
                val states = withTimeout(5.seconds) { ws.events.toList() }
                    .filterIsInstance<SocketEvent.StateChanged>().map { it.state }
                assertEquals(listOf(SocketState.Connecting(1u), SocketState.Open, SocketState.Closed), states)
                // A watch of a closed socket gives Closed and ends.
                assertEquals(listOf(SocketStatus(SocketState.Closed, 0uL)), withTimeout(5.seconds) { ws.watch().toList() })
            }
        }
    }

    @Test
    fun `cancelling the parent job closes the socket`(): Unit = runBlocking {
        val parent = Job()
        val ws = Socket(quick("ws://127.0.0.1:${ServerProcess.freePort()}/ws"), parent)
        ws.connect()
        val wait = async { runCatching { ws.waitOpen() }.exceptionOrNull() }
        delay(100)
        parent.cancel()
        assertEquals(SocketState.Closed, ws.state)
        assertKind(ErrorKind.CLOSED, withTimeout(2.seconds) { wait.await() })
        // A parent that already ended closes the socket at once.
        val ended = Job().apply { complete() }
        assertEquals(SocketState.Closed, Socket(quick("ws://127.0.0.1:9/ws"), ended).state)
    }

    @Test
    fun `messages throws a failed send, takes nothing else, and the next collection reads on`(): Unit = runBlocking {
        val url = "ws://127.0.0.1:${ServerProcess.freePort()}/ws" // nothing listens there
        Socket(quick(url)).use { ws ->
            ws.connect() // attempts fail: state changes that messages passes over
            val first = ws.send("""{"n":1}""", ttl = 200.milliseconds)
            val second = ws.send("""{"n":2}""", ttl = 400.milliseconds)
            // The engine drops an expired message and queues its SendFailed in one step, under
            // the lock pending() reads with: once pending() is empty, both events are queued, and
            // the first collection takes them in one batch (so the second one is left over).
            withTimeout(10.seconds) { while (ws.pending().isNotEmpty()) delay(20) }
            val received = mutableListOf<SocketEvent.Message>()

            val thrown = runCatching { withTimeout(10.seconds) { ws.messages.collect { received += it } } }.exceptionOrNull()
            val expired = assertKind(ErrorKind.SEND_FAILED, thrown, "the first collection's end")
            assertEquals(first, expired.messageId)
            assertEquals(SendFailureKind.EXPIRED, expired.sendFailure)
            assertInstanceOf(SteadyWsException::class.java, expired)
            assertTrue(expired.message!!.contains(first), expired.message)

            // The exception ended the collection (no reader left behind) and took
            // only its own event: the rest of the batch goes to the next collection.
            val again = runCatching { withTimeout(10.seconds) { ws.messages.collect { received += it } } }.exceptionOrNull()
            val expiredToo = assertKind(ErrorKind.SEND_FAILED, again, "the second collection's end")
            assertEquals(second, expiredToo.messageId)
            assertEquals(SendFailureKind.EXPIRED, expiredToo.sendFailure)

            // Nothing else to throw: a third collection waits (it is cancelled by the timeout)...
            assertNull(withTimeoutOrNull(300.milliseconds) { ws.messages.collect { received += it } })
            // ...and once the socket is closed, it passes over the last state changes and completes.
            ws.close()
            withTimeout(5.seconds) { ws.messages.collect { received += it } }
            assertEquals(emptyList<SocketEvent.Message>(), received, "no server, so no message")
        }
    }

    @Test
    fun `collecting on a single-threaded dispatcher never blocks it, and sockets start no threads`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            // Warm up: the shared native runtime and the dispatchers exist after this.
            Socket(quick(server.url)).use { warm ->
                warm.connect()
                withTimeout(10.seconds) { warm.waitOpen() }
            }
            val threadsBefore = osThreads()
            val executor = Executors.newSingleThreadExecutor { Thread(it, "fake-main").apply { isDaemon = true } }
            val main = executor.asCoroutineDispatcher() // stands in for Dispatchers.Main
            val sockets = List(20) { Socket(quick(server.url)) }
            try {
                val received = CompletableDeferred<SocketEvent.Message>()
                val collectors = sockets.map { ws ->
                    launch(main) { ws.messages.collect { if (!received.isCompleted) received.complete(it) } }
                }
                sockets.forEach { it.connect() }
                withTimeout(20.seconds) { sockets.forEach { it.waitOpen() } }
                // 20 collectors wait on the "main" thread, which stays free for other work.
                var slowest = 0L
                repeat(50) {
                    val started = System.nanoTime()
                    withContext(main) { }
                    slowest = maxOf(slowest, (System.nanoTime() - started) / 1_000_000)
                    delay(10)
                }
                assertTrue(slowest < 200, "the main thread was held for $slowest ms")
                val threadsAfter = osThreads()
                println("20 sockets open and collected: OS threads $threadsBefore -> $threadsAfter; slowest main-thread hop $slowest ms")
                assertTrue(threadsAfter - threadsBefore < 10, "threads $threadsBefore -> $threadsAfter")
                // And events do arrive on it.
                sockets[0].sendAndWait("""{"to":"everyone"}""", timeout = 10.seconds)
                assertEquals(1uL, withTimeout(10.seconds) { received.await() }.seq)
                collectors.forEach { it.cancelAndJoin() }
            } finally {
                sockets.forEach { it.close() }
                main.close()
            }
        }
    }

    // ---- the rest of the API ---------------------------------------------------------------------

    @Test
    fun `connect, send, and receive on the sender and on another client`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            Socket(quick(server.url)).use { alice ->
                Socket(quick(server.url)).use { bob ->
                    val aliceEvents = record(alice)
                    val bobEvents = record(bob)
                    alice.connect()
                    bob.connect()
                    withTimeout(10.seconds) {
                        alice.waitOpen()
                        bob.waitOpen()
                    }
                    assertEquals(SocketState.Open, alice.state)

                    val json = """{"text":"hello from kotlin","n":1}"""
                    val id = withTimeout(10.seconds) { alice.sendAndWait(json) }
                    assertTrue(id.isNotEmpty())
                    assertEquals(1uL, alice.stats().messagesAcked)
                    assertEquals(0uL, alice.stats().outboxLen)

                    // The ack is also an event, and the server fans the message out to everyone,
                    // the sender included (in either order).
                    val (_, echo) = aliceEvents.awaitAll(
                        "Acked" to { e: SocketEvent -> e is SocketEvent.Acked && e.id == id },
                        "echo" to { e: SocketEvent -> e is SocketEvent.Message && e.id == id },
                    )
                    checkEcho(echo as SocketEvent.Message, json)
                    checkEcho(bobEvents.await("echo on bob") { it is SocketEvent.Message && it.id == id } as SocketEvent.Message, json)

                    // send: an id now, the Acked event later.
                    val queued = bob.send("""{"text":"hi alice"}""")
                    bobEvents.await("Acked for bob") { it is SocketEvent.Acked && it.id == queued }
                    val down = aliceEvents.await("bob's message") { it is SocketEvent.Message && it.id == queued }
                    assertEquals(2uL, (down as SocketEvent.Message).seq)
                    assertEquals(ResumeCursor(2uL, down.ts), down.cursor)
                    assertEquals(2uL, alice.stats().lastSeq)
                }
            }
        }
    }

    @Test
    fun `state changes arrive as events and the state property is current`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            Socket(quick(server.url)).use { ws ->
                assertEquals(SocketState.Idle, ws.state)
                val events = record(ws)
                ws.connect()
                val connecting = events.await("Connecting") { isState(it) { s -> s is SocketState.Connecting } }
                assertEquals(SocketState.Connecting(1u), (connecting as SocketEvent.StateChanged).state)
                events.await("Open") { isState(it) { s -> s == SocketState.Open } }
                assertEquals(SocketState.Open, ws.state)

                ws.disconnect()
                val closed = events.await("Closed") { isState(it) { s -> s == SocketState.Closed } } as SocketEvent.StateChanged
                assertInstanceOf(StateCause.App::class.java, closed.cause)
                assertEquals(SocketState.Closed, ws.state)

                // connect() after disconnect() starts over.
                ws.connect()
                events.await("Open again") { isState(it) { s -> s == SocketState.Open } }
                withTimeout(5.seconds) { ws.waitOpen() }
                assertEquals("Socket(state=open)", ws.toString())
            }
        }
    }

    @Test
    fun `everything thrown derives from SteadyWsException and says what is wrong`(): Unit = runBlocking {
        // An http:// URL is refused at construction, with the ws:// form to use.
        val invalid = assertThrowsKind(ErrorKind.INVALID_URL) { Socket("http://127.0.0.1:9/ws") }
        assertInstanceOf(NativeException.Failure::class.java, invalid.cause)
        val explanation = invalid.message!!
        assertTrue(explanation.contains("ws://127.0.0.1:9/ws"), explanation)
        assertFalse(explanation.startsWith("message="), explanation)
        assertKind(ErrorKind.INVALID_OPTIONS, runCatching { Socket("ws://127.0.0.1:9/ws") { outboxMaxMessages = 0u } }.exceptionOrNull())

        val port = ServerProcess.freePort()
        Socket(quick("ws://127.0.0.1:$port/ws") { outboxMaxMessages = 3u }).use { ws ->
            ws.connect()
            // Queueing errors.
            val notJson = assertThrowsKind(ErrorKind.NOT_JSON) { ws.send("not json") }
            assertTrue(!notJson.message.isNullOrBlank(), "NotJson explains the parse error")
            assertThrowsKind(ErrorKind.WRONG_MODE) { ws.sendText("raw text needs raw mode") }
            assertThrows(IllegalArgumentException::class.java) { ws.send("1", ttl = Duration.ZERO) }

            // A message that cannot be acknowledged in time.
            val expired = runCatching { withTimeout(10.seconds) { ws.sendAndWait("""{"late":true}""", ttl = 200.milliseconds) } }.exceptionOrNull()
            val failure = assertKind(ErrorKind.SEND_FAILED, expired)
            assertEquals(SendFailureKind.EXPIRED, failure.sendFailure)
            assertTrue(failure.message!!.contains("time-to-live"), failure.message)

            // Waits that time out; the socket goes on trying.
            val openTimeout = assertKind(ErrorKind.TIMED_OUT, runCatching { ws.waitOpen(300.milliseconds) }.exceptionOrNull())
            assertFalse(ws.state == SocketState.Open, openTimeout.message)
            val unknown = assertKind(ErrorKind.UNKNOWN_MESSAGE, runCatching { ws.waitAcked("no-such-id", 1.seconds) }.exceptionOrNull())
            assertEquals("no-such-id", unknown.messageId)

            // The outbox holds 3: the fourth is refused.
            repeat(3) { ws.send("""{"fill":$it}""") }
            val full = assertThrowsKind(ErrorKind.OUTBOX_FULL) { ws.send("""{"fill":3}""") }

            listOf<Throwable>(invalid, notJson, failure, openTimeout, unknown, full).forEach {
                assertInstanceOf(SteadyWsException::class.java, it)
            }
        }
    }

    @Test
    fun `background disconnects after the grace period and foreground reconnects`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            val options = quick(server.url) {
                background = BackgroundMode.DISCONNECT_AFTER_GRACE
                backgroundGraceMs = 300u
            }
            Socket(options).use { ws ->
                val events = record(ws)
                ws.connect()
                withTimeout(10.seconds) { ws.waitOpen() }
                ws.setAppState(AppState.BACKGROUND)
                val suspended = events.await("Suspended") { isState(it) { s -> s == SocketState.Suspended } } as SocketEvent.StateChanged
                assertInstanceOf(StateCause.Lifecycle::class.java, suspended.cause)
                // Queued while suspended, delivered after foreground.
                val queued = ws.send("""{"from":"background"}""")
                delay(300)
                assertEquals(SocketState.Suspended, ws.state, "no reconnect while in the background")
                ws.setAppState(AppState.FOREGROUND)
                events.await("Open after foreground") { isState(it) { s -> s == SocketState.Open } }
                withTimeout(10.seconds) { ws.waitAcked(queued) }
                events.await("ack of the queued message") { it is SocketEvent.Acked && it.id == queued }
            }
        }
    }

    @Test
    fun `no attempts while the network is gone and one at once when it returns`(): Unit = runBlocking {
        val port = ServerProcess.freePort()
        Socket(quick("ws://127.0.0.1:$port/ws") { backoffInitialMs = 5_000u; backoffMaxMs = 10_000u }).use { ws ->
            val events = record(ws)
            ws.connect()
            events.await("Reconnecting") { isState(it) { s -> s is SocketState.Reconnecting } }
            ws.setNetwork(NetworkStatus.Unavailable)
            val waiting = events.await("WaitingForNetwork") { isState(it) { s -> s == SocketState.WaitingForNetwork } } as SocketEvent.StateChanged
            assertInstanceOf(StateCause.Lifecycle::class.java, waiting.cause)
            ServerProcess.start("127.0.0.1:$port").use {
                val started = System.nanoTime()
                ws.setNetwork(NetworkStatus.Available("wifi"))
                // The backoff says 5 s; the network hint attempts at once.
                withTimeout(3.seconds) { ws.waitOpen() }
                val took = (System.nanoTime() - started) / 1_000_000
                assertTrue(took < 2_000, "open after $took ms")
                events.await("Open", timeout = 3.seconds) { isState(it) { s -> s == SocketState.Open } }
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
    fun `NativeSocket closeSocket ends the event stream and resolves its waits`(): Unit = runBlocking {
        // The generated object directly: an idle socket has no events, so nextEvents() waits.
        NativeSocket(quick("ws://127.0.0.1:${ServerProcess.freePort()}/ws")).use { socket ->
            val pending = async(Dispatchers.Default) { socket.nextEvents() }
            val open = async(Dispatchers.Default) { closedKind { socket.waitOpen(null) } }
            delay(300)
            assertFalse(pending.isCompleted, "nextEvents() returned on an idle socket")
            socket.closeSocket()
            assertEquals(ErrorKind.CLOSED, withTimeout(5.seconds) { open.await() })
            // What was queued (the Closed state change), then empty for good.
            val tail = withTimeout(5.seconds) { pending.await() + socket.tryNextEvents() }
            assertTrue(tail.all { it is SocketEvent.StateChanged }, "after closeSocket: $tail")
            assertEquals(emptyList<SocketEvent>(), withTimeout(5.seconds) { socket.nextEvents() })
            assertEquals(ErrorKind.CLOSED, closedKind { withTimeout(1.seconds) { socket.waitOpen(null) } })
            assertEquals(SocketState.Closed, socket.state())
        }

        // An open socket: closeSocket closes the connection, and it does not reconnect.
        ServerProcess.start().use { server ->
            NativeSocket(quick(server.url)).use { socket ->
                socket.connect()
                withTimeout(10.seconds) { socket.waitOpen(null) }
                socket.closeSocket()
                val tail = withTimeout(5.seconds) {
                    buildList {
                        while (true) {
                            val batch = socket.nextEvents()
                            if (batch.isEmpty()) break
                            addAll(batch)
                        }
                    }
                }
                assertTrue(tail.all { it is SocketEvent.StateChanged }, "events: $tail")
                assertEquals(SocketState.Closed, (tail.last() as SocketEvent.StateChanged).state)
                assertEquals(SocketState.Closed, socket.state())
            }
        }
    }

    @Test
    fun `calling a released socket throws instead of crashing`() {
        val raw = NativeSocket(quick("ws://127.0.0.1:9/ws"))
        raw.close() // the generated AutoCloseable: frees the native object
        assertThrows(IllegalStateException::class.java) { raw.send("""{"late":true}""") }
        assertThrows(IllegalStateException::class.java) { raw.state() }
        val wrapped = Socket(quick("ws://127.0.0.1:9/ws"))
        wrapped.close()
        wrapped.close() // closing twice is harmless
        assertEquals(SocketState.Closed, wrapped.state)
        assertEquals(SocketState.Closed, wrapped.stats().state)
        assertThrowsKind(ErrorKind.CLOSED) { wrapped.send("{}") }
    }
}

/** [error] as a [SteadyWsException] of [kind], failing the test otherwise. */
fun assertKind(kind: ErrorKind, error: Throwable?, message: String? = null): SteadyWsException {
    val thrown = assertInstanceOf(SteadyWsException::class.java, error, message)
    assertEquals(kind, thrown.kind, message ?: thrown.message)
    return thrown
}

/** What [block] throws, a [SteadyWsException] of [kind], failing the test otherwise. */
fun assertThrowsKind(kind: ErrorKind, block: () -> Unit): SteadyWsException =
    assertKind(kind, runCatching(block).exceptionOrNull())

/** The kind of the [NativeException] a native call threw. */
suspend fun closedKind(call: suspend () -> Unit): ErrorKind? = try {
    call()
    null
} catch (e: NativeException.Failure) {
    e.kind
}
