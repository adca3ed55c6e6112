package dev.steadyws

import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.WebSocket
import java.nio.ByteBuffer
import java.nio.file.Files
import java.time.Instant
import java.time.temporal.ChronoUnit
import java.util.concurrent.CompletionStage
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.random.Random
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Deferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout

/** A message of the server's stream as it went over the wire. */
private data class Streamed(val id: String, val seq: ULong, val frame: String)

/**
 * The server's whole stream, read raw: a plain WebSocket client (no steadyws, so no client-side
 * dedup can hide a duplicate) connecting with `last_seq=0`, which makes the reference server
 * replay everything it stored (docs/protocol.md §4), up to the head its `hello` announced.
 */
private fun readStream(url: String): List<Streamed> {
    val frames = LinkedBlockingQueue<String>()
    val listener = object : WebSocket.Listener {
        private val partial = StringBuilder()
        override fun onText(webSocket: WebSocket, data: CharSequence, last: Boolean): CompletionStage<*>? {
            partial.append(data)
            if (last) {
                frames.add(partial.toString())
                partial.setLength(0)
            }
            webSocket.request(1)
            return null
        }
    }
    val socket = HttpClient.newHttpClient().newWebSocketBuilder()
        .buildAsync(URI("$url?last_seq=0"), listener)
        .get(10, TimeUnit.SECONDS)
    try {
        fun next(): String = frames.poll(10, TimeUnit.SECONDS) ?: throw AssertionError("the stream of $url stalled")
        val hello = next()
        assertTrue(hello.contains("\"type\":\"hello\""), "first frame: $hello")
        val head = number("seq", hello)
        val stream = buildList {
            while (size.toULong() < head) {
                val frame = next()
                if (!frame.contains("\"type\":\"msg\"")) continue
                val id = Regex("\"id\":\"([^\"]+)\"").find(frame)?.groupValues?.get(1) ?: throw AssertionError("no id in $frame")
                add(Streamed(id, number("seq", frame), frame))
            }
        }
        assertEquals((1uL..head).toList(), stream.map { it.seq }, "the replay holds the whole stream, in order")
        return stream
    } finally {
        socket.abort()
    }
}

private fun number(field: String, frame: String): ULong =
    Regex("\"$field\":(\\d+)").find(frame)?.groupValues?.get(1)?.toULong() ?: throw AssertionError("no $field in $frame")

/** The store test's child process (StoreChild.kt). */
private fun child(vararg args: String) = ChildJvm.start("dev.steadyws.StoreChildKt", *args)

/**
 * Every line the child prints, to [onLine], until its output ends. The first time [killNow] says
 * so, it is SIGKILLed after a random 0 to [jitterMs] ms; the lines it printed before it died still
 * come, so the test knows everything it reported. Returns whether it was killed.
 */
private fun ChildJvm.follow(random: Random, jitterMs: Long, killNow: (String) -> Boolean, onLine: (String) -> Unit): Boolean {
    var killed = false
    while (true) {
        val line = nextLine() ?: return killed
        onLine(line)
        if (!killed && killNow(line)) {
            Thread.sleep(random.nextLong(0, jitterMs + 1))
            kill()
            killed = true
        }
    }
}

@Timeout(120)
class DurableStoreTest {
    private val directory: File = Files.createTempDirectory("steadyws-kotlin-store").toFile()

    @AfterEach
    fun removeStore() {
        directory.deleteRecursively()
    }

    private fun durable(url: String, name: String = "default") = quick(url) { store = StoreConfig(directory, name) }

    @Test
    fun `outbound, SIGKILLed five times while sending, every id send returned reaches the server once and in order`(): Unit = runBlocking {
        val total = 200
        val seed = System.nanoTime()
        val random = Random(seed)
        // Each run is killed once it printed `sent` for the n of its kill point, plus 0-10 ms.
        val killPoints = generateSequence { random.nextInt(5, total - 5) }.distinct().take(5).sorted().toList()
        println("outbound SIGKILL test: seed=$seed, kills after n=$killPoints")
        ServerProcess.start().use { server ->
            val printed = mutableListOf<Pair<String, Int>>() // (id, n) of every `sent` line, in order
            var kills = 0
            for (run in 0..killPoints.size) {
                val finalRun = run == killPoints.size
                val from = printed.lastOrNull()?.let { it.second + 1 } ?: 0
                child("send", server.url, directory.path, from.toString(), total.toString()).use { app ->
                    var done = false
                    val killNow = { line: String -> !finalRun && line.startsWith("sent ") && line.substringAfterLast(' ').toInt() >= killPoints[run] }
                    val killed = withContext(Dispatchers.IO) {
                        app.follow(random, 10, killNow) { line ->
                            val words = line.split(' ')
                            when (words[0]) {
                                "ready" -> Unit
                                "sent" -> printed += words[1] to words[2].toInt()
                                "done" -> done = true
                                else -> throw AssertionError("run $run printed: $line") // `failed` included
                            }
                        }
                    }
                    if (killed) kills++
                    if (finalRun) {
                        assertTrue(done, "the last run printed no `done`")
                        assertEquals(0, withContext(Dispatchers.IO) { app.awaitExit() }, "the last run exit status")
                    }
                }
            }
            assertEquals((0 until total).toList(), printed.map { it.second }, "each n printed once, in order")

            val stream = withContext(Dispatchers.IO) { readStream(server.url) }
            val printedIds = printed.map { it.first }
            val counts = stream.groupingBy { it.id }.eachCount()
            val repeated = printedIds.filter { (counts[it] ?: 0) != 1 }.map { it to (counts[it] ?: 0) }
            assertTrue(repeated.isEmpty(), "printed ids not stored exactly once (id to times): $repeated")
            val inStream = stream.filter { it.id in printedIds.toSet() }
            assertEquals(printedIds, inStream.map { it.id }, "the stream holds the printed ids in printed order")
            // Each stored frame carries the payload its `sent` line named.
            val n = printed.toMap()
            inStream.forEach { assertTrue(it.frame.contains("\"n\":${n[it.id]}"), "${it.frame} is not n=${n[it.id]}") }
            // Stored but killed before its `sent` line (at most one per kill): the next run sent
            // that n again under a new id (an app would keep its own record of what it queued).
            println("outbound SIGKILL test: $kills kills, ${printed.size} printed, ${stream.size} stored, ${stream.size - printed.size} stored unprinted")
            assertTrue(stream.size - printed.size <= kills, "more unprinted messages than kills")
        }
    }

    @Test
    fun `inbound, SIGKILLed three times while reading, every message arrives and only the one in hand comes again, flagged`(): Unit = runBlocking {
        val total = 100
        val seed = System.nanoTime()
        val random = Random(seed)
        val killPoints = generateSequence { random.nextInt(5, total - 5) }.distinct().take(3).sorted().toList()
        val processingMs = 20L
        println("inbound SIGKILL test: seed=$seed, kills after seq=$killPoints")
        ServerProcess.start().use { server ->
            data class Got(val run: Int, val id: String, val seq: ULong, val redelivered: Boolean)
            val got = mutableListOf<Got>()
            var kills = 0
            var published: Deferred<List<String>>? = null
            for (run in 0..killPoints.size) {
                val finalRun = run == killPoints.size
                child("read", server.url, directory.path, total.toString(), processingMs.toString()).use { app ->
                    // The first run is connected before anything is published, so its first
                    // cursor is the empty stream's head: it must get everything after it.
                    withContext(Dispatchers.IO) {
                        assertEquals("ready", app.nextLine())
                        assertEquals("open", app.nextLine())
                    }
                    if (published == null) published = async { publish(server.url, total, "inbound") }
                    var done = false
                    // Killed a random moment after printing: mostly while "processing" (the
                    // message in hand), sometimes while taking the next one.
                    val killNow = { line: String -> !finalRun && line.startsWith("got ") && line.split(' ')[2].toULong() >= killPoints[run].toULong() }
                    val killed = withContext(Dispatchers.IO) {
                        app.follow(random, processingMs + 5, killNow) { line ->
                            val words = line.split(' ')
                            when (words[0]) {
                                "got" -> got += Got(run, words[1], words[2].toULong(), words[3] == "1")
                                "done" -> done = true
                                else -> throw AssertionError("run $run printed: $line")
                            }
                        }
                    }
                    if (killed) kills++
                    if (finalRun) {
                        assertTrue(done, "the last run printed no `done`")
                        assertEquals(0, withContext(Dispatchers.IO) { app.awaitExit() }, "the last run exit status")
                    }
                }
            }
            val ids = withTimeout(60.seconds) { published!!.await() }

            assertEquals(ids.toSet(), got.map { it.id }.toSet(), "every published message was printed, and nothing else")
            // Each run reads on from where the last one stopped, in order: the message in hand at
            // the kill may come again (the first of the next run), nothing else.
            val runs = got.groupBy { it.run }.values.toList()
            runs.forEach { messages ->
                assertEquals((0 until messages.size).map { messages.first().seq + it.toULong() }, messages.map { it.seq }, "one run, in order: $messages")
                assertTrue(messages.drop(1).none { it.redelivered }, "only a run's first message can be redelivered: $messages")
            }
            assertEquals(1uL, runs.first().first().seq)
            assertFalse(runs.first().first().redelivered, "nothing is redelivered on the first run")
            for ((before, after) in runs.zipWithNext()) {
                val last = before.last()
                val first = after.first()
                assertTrue(first.seq == last.seq || first.seq == last.seq + 1u, "run ${first.run} starts at seq ${first.seq}, the last run ended at ${last.seq}")
                if (first.seq == last.seq) assertTrue(first.redelivered, "seq ${first.seq} came again without the redelivered flag")
            }
            val repeats = got.size - got.map { it.id }.toSet().size
            println("inbound SIGKILL test: $kills kills, ${got.size} printed for $total published, $repeats printed twice, ${got.count { it.redelivered }} flagged redelivered")
            assertTrue(repeats <= kills, "$repeats repeats for $kills kills")
        }
    }

    @Test
    fun `pending messages outlive the socket with their ids and order, an expired one is reported, a cancel is durable`(): Unit = runBlocking {
        val port = ServerProcess.freePort() // nothing listens yet
        val url = "ws://127.0.0.1:$port/ws"
        val before = Instant.now().truncatedTo(ChronoUnit.MILLIS)
        val ttl = 800.milliseconds
        val (ids, expiring) = Socket(durable(url)).use { ws ->
            ws.connect()
            val ids = List(3) { ws.send("""{"n":$it}""") }
            val expiring = ws.send("""{"n":"expires"}""", ttl = ttl)
            assertEquals(ids + expiring, ws.pending().map { it.id })
            ids to expiring
        }
        val after = Instant.now()
        delay(ttl + 200.milliseconds) // the ttl runs out while no socket is there

        Socket(durable(url)).use { ws ->
            // At once, before connect: what the last socket left, with its ids, in order.
            val pending = ws.pending()
            assertEquals(ids, pending.map { it.id })
            assertEquals((0 until 3).map { """{"n":$it}""" }, pending.map { it.json })
            pending.forEach { assertTrue(it.createdAt in before..after, "created ${it.createdAt}, sent between $before and $after") }
            val events = record(ws)
            val expired = events.await("SendFailed(EXPIRED) at start") { it is SocketEvent.SendFailed && it.id == expiring } as SocketEvent.SendFailed
            assertEquals(SendFailureKind.EXPIRED, expired.reason)
            assertEquals(MessageData.Json("""{"n":"expires"}"""), expired.data)

            assertTrue(ws.cancel(ids[1]))
            assertFalse(ws.cancel(ids[1]), "a second cancel finds nothing pending")
            assertFalse(ws.cancel("no-such-id"))
            val cancelled = events.await("SendFailed(CANCELLED)") { it is SocketEvent.SendFailed && it.id == ids[1] } as SocketEvent.SendFailed
            assertEquals(SendFailureKind.CANCELLED, cancelled.reason)
            assertEquals(MessageData.Json("""{"n":1}"""), cancelled.data)
            val waited = runCatching { withTimeout(5.seconds) { ws.waitAcked(ids[1]) } }.exceptionOrNull()
            assertEquals(SendFailureKind.CANCELLED, assertKind(ErrorKind.SEND_FAILED, waited).sendFailure)
            assertEquals(listOf(ids[0], ids[2]), ws.pending().map { it.id })
        }

        ServerProcess.start("127.0.0.1:$port").use { server ->
            Socket(durable(url)).use { ws ->
                assertEquals(listOf(ids[0], ids[2]), ws.pending().map { it.id }, "the cancel was kept")
                ws.connect()
                withTimeout(10.seconds) {
                    ws.waitAcked(ids[0])
                    ws.waitAcked(ids[2])
                }
                assertEquals(emptyList<PendingMessage>(), ws.pending())
            }
            assertEquals(listOf(ids[0], ids[2]), withContext(Dispatchers.IO) { readStream(server.url) }.map { it.id }, "what the server stored")
        }
    }

    @Test
    fun `one owner per store, in this process and across processes, and refusals say what to do`(): Unit = runBlocking {
        val url = "ws://127.0.0.1:${ServerProcess.freePort()}/ws"
        val inUse = Socket(durable(url)).use { owner ->
            val refused = runCatching { Socket(durable(url)) }.exceptionOrNull()
            val inUse = assertKind(ErrorKind.STORE_IN_USE, refused)
            assertInstanceOf(NativeException.Failure::class.java, inUse.cause)
            assertTrue(inUse.message!!.contains(directory.path), inUse.message)
            // Another name in the same directory is another store.
            Socket(durable(url, name = "second")).use { assertEquals(emptyList<PendingMessage>(), it.pending()) }
            owner.send("""{"kept":true}""")
            inUse
        }
        // Closed: the store can be opened again at once, with what it holds.
        Socket(durable(url)).use { assertEquals(1, it.pending().size) }

        // Another process holds it.
        child("read", url, directory.path, "1", "0").use { other ->
            assertEquals("ready", withContext(Dispatchers.IO) { other.nextLine() })
            assertKind(ErrorKind.STORE_IN_USE, runCatching { Socket(durable(url)) }.exceptionOrNull())
            withContext(Dispatchers.IO) { other.kill() }
        }
        // Killed, it holds nothing.
        Socket(durable(url)).use { assertEquals(1, it.pending().size) }

        // A newer steadyws wrote it: its format number (SQLite's user_version, bytes 60-63 of
        // the header) is above what this build reads. Refused, and the file is left as it is.
        val file = File(directory, "default.steadyws")
        assertFalse(File(directory, "default.steadyws-wal").exists(), "closing folded the log into the file")
        val newer = file.readBytes().also { ByteBuffer.wrap(it).putInt(60, 99) }
        file.writeBytes(newer)
        val refusedNewer = runCatching { Socket(durable(url)) }.exceptionOrNull()
        val tooNew = assertKind(ErrorKind.STORE_NEWER_FORMAT, refusedNewer)
        assertTrue(tooNew.message!!.contains("newer"), tooNew.message)
        assertTrue(newer.contentEquals(file.readBytes()), "the refused store was changed")

        // A directory that is a file cannot hold a store.
        val notADirectory = File(directory, "not-a-directory").apply { writeText("") }
        val failed = runCatching { Socket(quick(url) { store = StoreConfig(notADirectory) }) }.exceptionOrNull()
        assertKind(ErrorKind.STORE_FAILED, failed)
        assertTrue(failed!!.message!!.contains(notADirectory.path), failed.message)
        // A name is a file name in the directory, nothing else.
        val badName = runCatching { Socket(durable(url, name = "../outside")) }.exceptionOrNull()
        assertKind(ErrorKind.INVALID_OPTIONS, badName)
        // Raw mode has no ids to keep.
        val raw = runCatching { Socket(durable(url).apply { rawMode = true }) }.exceptionOrNull()
        assertKind(ErrorKind.INVALID_OPTIONS, raw)
        listOf(inUse, tooNew, failed, badName, raw).forEach { assertInstanceOf(SteadyWsException::class.java, it) }

        // The option round-trips through the generated fields.
        val options = StoreConfig(directory, "named", syncEveryCommit = true)
        assertEquals(options, SocketConfig(url).apply { store = options }.store)
        assertEquals(null, SocketConfig(url).apply { store = options; store = null }.store)
    }

    @Test
    fun `a store that took no message yet resumes where its socket first connected`(): Unit = runBlocking {
        ServerProcess.start().use { server ->
            publish(server.url, 2, "history") // before this client's time: not for it
            Socket(durable(server.url)).use { ws ->
                ws.connect()
                withTimeout(10.seconds) { ws.waitOpen() }
                delay(300) // the server's hello (the head of the stream) arrives right after the upgrade
            }
            val ids = publish(server.url, 3, "while away")
            Socket(durable(server.url)).use { ws ->
                ws.connect()
                val missed = withTimeout(10.seconds) { ws.messages.take(3).toList() }
                assertEquals(ids, missed.map { it.id }, "the messages published while no socket ran")
            }
        }
    }

    @Test
    fun `a damaged store is moved aside, reported once, and replaced`(): Unit = runBlocking {
        val url = "ws://127.0.0.1:${ServerProcess.freePort()}/ws"
        val damaged = "this is not an SQLite database".repeat(200)
        File(directory, "default.steadyws").writeText(damaged)
        val id = Socket(durable(url)).use { ws ->
            val events = record(ws)
            val first = withTimeout(5.seconds) { events.receive() }
            val recovered = assertInstanceOf(SocketEvent.StoreRecovered::class.java, first, "the first event")
            assertTrue(recovered.problem.isNotBlank())
            assertEquals(0u, recovered.recoveredMessages)
            val movedTo = File(recovered.movedTo ?: throw AssertionError("no movedTo in $recovered"))
            assertEquals(damaged, movedTo.readText(), "the damaged file is kept for inspection")
            ws.send("""{"after":"recovery"}""")
        }
        Socket(durable(url)).use { ws ->
            assertEquals(listOf(id), ws.pending().map { it.id }, "the new store keeps what it was given")
            // Not connected: no event at all, so no second StoreRecovered.
            val events = record(ws)
            assertEquals(null, withTimeoutOrNull(300.milliseconds) { events.receive() })
        }
    }

    @Test
    fun `an app that collects messages only is told of a damaged store by an exception`(): Unit = runBlocking {
        val url = "ws://127.0.0.1:${ServerProcess.freePort()}/ws" // nothing listens there
        val garbage = ByteArray(4096) { 0x5A }
        File(directory, "default.steadyws").writeBytes(garbage)
        Socket(durable(url)).use { ws ->
            val received = mutableListOf<SocketEvent.Message>()
            val thrown = runCatching { withTimeout(5.seconds) { ws.messages.collect { received += it } } }.exceptionOrNull()
            val recovered = assertKind(ErrorKind.STORE_RECOVERED, thrown, "the first collection's end")
            assertInstanceOf(SteadyWsException::class.java, recovered)
            val message = recovered.message!!
            val movedTo = File(message.substringAfter("moved to ", "").ifEmpty { throw AssertionError("no moved-to path in $message") })
            assertTrue(garbage.contentEquals(movedTo.readBytes()), "the damaged file is kept as it was")
            assertTrue(message.contains("damaged") && message.contains("0 pending"), message)

            // Reported once: collecting again neither throws it again nor is refused as a second
            // collector; it waits (until the timeout), and completes once the socket is closed.
            assertNull(withTimeoutOrNull(300.milliseconds) { ws.messages.collect { received += it } })
            ws.close()
            withTimeout(5.seconds) { ws.messages.collect { received += it } }
            assertEquals(emptyList<SocketEvent.Message>(), received)
        }
    }
}
