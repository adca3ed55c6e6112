// Inbound throughput into a JVM app: small messages delivered by steadyws (`Socket`, its
// `events` Flow) vs the JDK's built-in `java.net.http.WebSocket`, from the same reference server,
// in the same run. The Kotlin counterpart of bindings/python/bench/inbound.py.
//
// It starts its own reference server (`--history` above the message count), publishes N small
// messages `{"n":i,"text":"hello"}` into its stream (a JDK WebSocket sending envelope frames and
// counting the acks), then times each client from the start of its connection to the N-th message
// in hand, both replaying the stream from the start (`resumeLastSeq = 0` / `?last_seq=0`):
//   - steadyws: the Rust core decodes each envelope; the app takes `SocketEvent.Message`s, and the
//     bench checks that their seq runs 1, 2, …, N;
//   - JDK: the app gets text frames; the bench does NOT parse JSON (a substring check for
//     `"type":"msg"`, and the seq digits read by hand to check the order), so its figure is an
//     upper bound on what a real JDK client that parses each frame would reach.
// One untimed warm-up run of each (for the JIT), then RUNS runs alternating between the two. It
// prints one JSON line: the median rate of each, and the median, min and max of the per-run ratios
// (steadyws / JDK, each run paired with the JDK run that follows it).
//
// Usage: java -cp <steadyws classes or jar>:<jna, kotlin-stdlib, kotlinx-coroutines> \
//          dev.steadyws.bench.InboundKt SERVER_BINARY LIBRARY_LABEL [MESSAGES [RUNS]]
// LIBRARY_LABEL names the native library under test ("debug", "release") and is printed as is.
// Fails (exit status 1, the reason on stderr) when a client gets anything but the N messages in
// order, when the server refuses a message, or when any step exceeds its time bound.

package dev.steadyws.bench

import dev.steadyws.SocketEvent
import dev.steadyws.SocketState
import dev.steadyws.Socket
import dev.steadyws.text
import java.net.URI
import java.net.http.HttpClient
import java.net.http.WebSocket
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CompletionStage
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.system.exitProcess
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull

/** Every wait of the bench ends within this (a whole timed run included). */
private const val BOUND_SECONDS = 120L

private const val DEFAULT_MESSAGES = 20_000

private open class BenchFailure(message: String) : Exception(message)

/**
 * The JDK client failed its own WebSocket decoding (`onError`). JDK 17 and 25 drop bytes read in
 * the hand-over from the HTTP/1.1 upgrade to the WebSocket when frames follow the 101 at once:
 * the capture shows the server's bytes valid while the JDK skips 32 KiB after stream byte 16384.
 */
private class JdkClientFailure(message: String) : BenchFailure(message)

/** Most retries of a JDK run that ended in [JdkClientFailure]; each is reported in the JSON. */
private const val JDK_RETRIES = 2

private fun fail(message: String): Nothing = throw BenchFailure(message)

private fun log(message: String) = System.err.println("inbound: $message")

// ---- the reference server --------------------------------------------------------------------

private class Server(binary: String, history: Int) : AutoCloseable {
    private val process: Process = ProcessBuilder(
        binary, "--listen", "127.0.0.1:0", "--history", history.toString(),
    ).redirectError(ProcessBuilder.Redirect.INHERIT)
        .apply { environment()["RUST_LOG"] = "warn" }
        .start()
    private val stopOnExit = Thread { process.destroyForcibly() }
    val url: String

    init {
        Runtime.getRuntime().addShutdownHook(stopOnExit) // a SIGTERM (timeout) stops it too
        val lines = LinkedBlockingQueue<String>()
        Thread {
            process.inputStream.bufferedReader().useLines { seq -> seq.forEach { lines.add(it) } }
        }.apply { isDaemon = true }.start()
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20)
        var found: String? = null
        while (found == null && System.nanoTime() < deadline) {
            val line = lines.poll(100, TimeUnit.MILLISECONDS)
            if (line != null && line.startsWith("listening on ")) found = line.removePrefix("listening on ").trim()
            if (line == null && !process.isAlive) break
        }
        if (found == null) {
            close()
            fail("$binary did not report `listening on <url>` (within 20 s, or it exited)")
        }
        url = found
    }

    override fun close() {
        process.destroyForcibly()
        process.waitFor(10, TimeUnit.SECONDS)
        runCatching { Runtime.getRuntime().removeShutdownHook(stopOnExit) }
    }
}

// ---- frames, read without a JSON parser -------------------------------------------------------

/** The digits after `"seq":` in [frame], or -1 when there is no such field. */
private fun seqOf(frame: String): Long {
    val at = frame.indexOf("\"seq\":")
    if (at < 0) return -1
    var i = at + 6
    var value = 0L
    val start = i
    while (i < frame.length && frame[i] in '0'..'9') {
        value = value * 10 + (frame[i] - '0')
        i++
    }
    return if (i == start) -1 else value
}

private const val MSG = "\"type\":\"msg\""

/** A `WebSocket.Listener` that joins fragmented text frames and hands whole ones to [onFrame]. */
private abstract class FrameListener : WebSocket.Listener {
    val failure = CompletableFuture<Unit>()
    private val partial = StringBuilder()

    /** One whole text frame; runs on the HttpClient's thread, frames one at a time. */
    abstract fun onFrame(frame: String)

    override fun onOpen(webSocket: WebSocket) = webSocket.request(Long.MAX_VALUE)

    override fun onText(webSocket: WebSocket, data: CharSequence, last: Boolean): CompletionStage<*>? {
        if (!last) {
            partial.append(data)
            return null
        }
        val frame = if (partial.isEmpty()) data.toString() else partial.append(data).toString().also { partial.setLength(0) }
        try {
            onFrame(frame)
        } catch (e: BenchFailure) {
            failure.completeExceptionally(e)
        }
        return null
    }

    override fun onError(webSocket: WebSocket, error: Throwable) {
        val causes = generateSequence(error) { it.cause }.joinToString(" <- ")
        failure.completeExceptionally(JdkClientFailure("JDK WebSocket error: $causes"))
    }

    override fun onClose(webSocket: WebSocket, statusCode: Int, reason: String): CompletionStage<*>? {
        failure.completeExceptionally(BenchFailure("the server closed the connection ($statusCode $reason)"))
        return null
    }
}

/** Waits for [done] or the listener's failure, within [BOUND_SECONDS]. */
private fun <T> awaitEither(done: CompletableFuture<T>, listener: FrameListener, what: String): T {
    try {
        CompletableFuture.anyOf(done, listener.failure).get(BOUND_SECONDS, TimeUnit.SECONDS)
    } catch (e: java.util.concurrent.TimeoutException) {
        fail("$what: nothing decided within $BOUND_SECONDS s")
    } catch (e: java.util.concurrent.ExecutionException) {
        throw e.cause ?: e
    }
    return done.getNow(null) ?: fail("$what: not done")
}

// ---- publishing -------------------------------------------------------------------------------

/** Stores [count] messages in the server's stream: envelope frames, each acked once. */
private fun publish(client: HttpClient, url: String, count: Int) {
    val acked = AtomicInteger()
    val allAcked = CompletableFuture<Unit>()
    val listener = object : FrameListener() {
        override fun onFrame(frame: String) {
            when {
                frame.contains("\"type\":\"ack\"") -> if (acked.incrementAndGet() == count) allAcked.complete(Unit)
                frame.contains("\"type\":\"error\"") -> fail("the server refused a published message: $frame")
            }
        }
    }
    val ws = client.newWebSocketBuilder().buildAsync(URI(url), listener).get(20, TimeUnit.SECONDS)
    try {
        for (n in 0 until count) {
            ws.sendText("""{"type":"msg","id":"bench-$n","data":{"n":$n,"text":"hello"}}""", true)
                .get(BOUND_SECONDS, TimeUnit.SECONDS)
        }
        awaitEither(allAcked, listener, "publishing $count messages (acked ${acked.get()})")
    } finally {
        ws.abort()
    }
}

// ---- the two clients --------------------------------------------------------------------------

/**
 * steadyws: messages per second from creating the socket to the [count]-th `Message` in hand,
 * replaying the stream after [resumeFrom]. Fails unless their seq runs 1…[count] with nothing
 * between them but the state changes of one connection.
 */
private fun steadyws(url: String, count: Int, resumeFrom: ULong = 0uL): Double = runBlocking {
    val started = System.nanoTime()
    var elapsed = 0L
    Socket(url) { resumeLastSeq = resumeFrom }.use { socket ->
        socket.connect()
        var expected = 1uL
        var last: SocketEvent.Message? = null
        withTimeoutOrNull(BOUND_SECONDS.seconds) {
            socket.events.first { event ->
                when (event) {
                    is SocketEvent.Message -> {
                        if (event.seq != expected) fail("steadyws: message ${expected} expected, got seq ${event.seq}")
                        last = event
                        expected++
                        expected > count.toULong()
                    }
                    is SocketEvent.StateChanged -> {
                        if (event.state !is SocketState.Connecting && event.state != SocketState.Open) {
                            fail("steadyws: unexpected state ${event.state} (${event.cause}) after ${expected - 1uL} messages")
                        }
                        false
                    }
                    else -> fail("steadyws: unexpected event $event after ${expected - 1uL} messages")
                }
            }
        } ?: fail("steadyws: $count messages not received within $BOUND_SECONDS s (got ${expected - 1uL})")
        elapsed = System.nanoTime() - started
        // Outside the timing: the last one is the last published.
        val text = last?.data?.text
        if (text != """{"n":${count - 1},"text":"hello"}""") fail("steadyws: last message $text")
    }
    count / (elapsed / 1e9)
}

/**
 * The JDK's `java.net.http.WebSocket`: messages per second from starting the connection to the
 * [count]-th `msg` frame in hand, replaying after [resumeFrom]. No JSON parsing: a substring check
 * for the type, and the seq digits read by hand to check that they run 1…[count].
 */
private fun jdk(client: HttpClient, url: String, count: Int, resumeFrom: Long = 0): Double {
    val done = CompletableFuture<Long>()
    val listener = object : FrameListener() {
        private var hello = false
        private var expected = 1L

        override fun onFrame(frame: String) {
            if (!hello) {
                if (!frame.contains("\"type\":\"hello\"") || seqOf(frame) != count.toLong()) {
                    fail("JDK: expected a hello announcing seq $count first, got $frame")
                }
                hello = true
            } else if (frame.contains(MSG)) {
                val seq = seqOf(frame)
                if (seq != expected) fail("JDK: message $expected expected, got seq $seq")
                if (expected++ == count.toLong()) {
                    if (!frame.contains("\"data\":{\"n\":${count - 1},\"text\":\"hello\"}")) fail("JDK: last message $frame")
                    done.complete(System.nanoTime())
                }
            } else if (!frame.contains("\"type\":\"ping\"")) {
                fail("JDK: unexpected frame after ${expected - 1} messages: $frame")
            }
        }
    }
    val started = System.nanoTime()
    val ws = client.newWebSocketBuilder().buildAsync(URI("$url?last_seq=$resumeFrom"), listener)
        .get(20, TimeUnit.SECONDS)
    try {
        val finished = awaitEither(done, listener, "JDK WebSocket reading $count messages")
        return count / ((finished - started) / 1e9)
    } finally {
        ws.abort()
    }
}

// ---- main -------------------------------------------------------------------------------------

/** [block] must fail with a [BenchFailure] whose message contains [expected]. */
private fun mustFail(what: String, expected: String, block: () -> Unit) {
    val failure = try {
        block()
        null
    } catch (e: BenchFailure) {
        e
    }
    if (failure == null || !failure.message!!.contains(expected)) {
        fail("negative control \"$what\" was not caught as expected (\"$expected\"): ${failure?.message ?: "it passed"}")
    }
}

private fun median(values: List<Double>): Double {
    val sorted = values.sorted()
    val mid = sorted.size / 2
    return if (sorted.size % 2 == 1) sorted[mid] else (sorted[mid - 1] + sorted[mid]) / 2
}

private fun json(value: String) = "\"" + value.replace("\\", "\\\\").replace("\"", "\\\"") + "\""

fun main(args: Array<String>) {
    if (args.size !in 2..4) {
        System.err.println("usage: InboundKt SERVER_BINARY LIBRARY_LABEL [MESSAGES [RUNS]]")
        exitProcess(2)
    }
    val (binary, library) = args
    val count = args.getOrNull(2)?.toInt() ?: DEFAULT_MESSAGES
    val runs = args.getOrNull(3)?.toInt() ?: 5
    require(count >= 2 && runs >= 1) { "MESSAGES must be at least 2 and RUNS at least 1" }
    try {
        Server(binary, history = count + 10).use { server ->
            val client = HttpClient.newHttpClient()
            log("publishing $count messages to ${server.url}")
            publish(client, server.url, count)

            // The checks above catch a client that does not get messages 1…N in order: starting
            // after seq 1 (the first message is 2) must fail in both.
            mustFail("steadyws resuming after seq 1", "message 1 expected, got seq 2") {
                steadyws(server.url, count, resumeFrom = 1uL)
            }
            mustFail("JDK resuming after seq 1", "message 1 expected, got seq 2") {
                jdk(client, server.url, count, resumeFrom = 1)
            }
            log("negative controls: ok (a replay starting at seq 2 fails both clients' checks)")

            val ours = mutableListOf<Double>()
            val theirs = mutableListOf<Double>()
            val jdkRetried = mutableListOf<String>()
            // Only the JDK baseline's own decoding failure is retried, at most JDK_RETRIES times in
            // all and each reported; steadyws and every order/content check still fail at once.
            fun jdkRun(): Double {
                while (true) {
                    try {
                        return jdk(client, server.url, count)
                    } catch (e: JdkClientFailure) {
                        if (jdkRetried.size >= JDK_RETRIES) throw e
                        jdkRetried += e.message!!
                        log("JDK run retried (${jdkRetried.size}/$JDK_RETRIES): ${e.message}")
                    }
                }
            }
            log("warm-up: steadyws ${steadyws(server.url, count).toLong()}/s, JDK ${jdkRun().toLong()}/s (not counted)")
            repeat(runs) { run ->
                ours += steadyws(server.url, count)
                theirs += jdkRun()
                log("run ${run + 1}/$runs: steadyws ${ours.last().toLong()}/s, JDK ${theirs.last().toLong()}/s")
            }
            val ratios = ours.zip(theirs) { a, b -> a / b }
            println(
                "{\"bench\":\"kotlin_inbound\",\"messages\":$count,\"runs\":$runs,\"warmup_runs\":1," +
                    "\"steadyws_events_per_s\":${median(ours).toLong()}," +
                    "\"jdk_websocket_msgs_per_s\":${median(theirs).toLong()}," +
                    "\"ratio\":{\"median\":${"%.3f".format(median(ratios))},\"min\":${"%.3f".format(ratios.min())}," +
                    "\"max\":${"%.3f".format(ratios.max())}}," +
                    "\"jdk_runs_retried\":${jdkRetried.size}," +
                    (if (jdkRetried.isNotEmpty()) "\"jdk_retry_reasons\":[${jdkRetried.joinToString(",") { json(it) }}]," else "") +
                    "\"library\":${json(library)}," +
                    (if (library == "debug") "\"library_note\":\"the DEBUG (unoptimised) Rust library: the steadyws figure " +
                        "mostly measures debug code; bindings/kotlin/bench/run.sh measures the release build\"," else "") +
                    (if (count != DEFAULT_MESSAGES) "\"messages_note\":\"reduced from $DEFAULT_MESSAGES for a quick run\"," else "") +
                    "\"jdk_parsing\":\"none: substring type check and seq digits only, so its rate is an upper bound (its cost a lower bound) for a JDK client that parses JSON\"," +
                    "\"java\":${json(System.getProperty("java.version"))}}",
            )
        }
    } catch (e: BenchFailure) {
        System.err.println("inbound: FAILED: ${e.message}")
        exitProcess(1)
    } catch (e: Throwable) {
        System.err.println("inbound: FAILED:")
        e.printStackTrace()
        exitProcess(1)
    }
    exitProcess(0) // no client thread keeps the JVM alive
}
