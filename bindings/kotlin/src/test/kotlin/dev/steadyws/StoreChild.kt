// The child process of the SIGKILL tests in DurableStoreTest: an app using Socket with a
// store, in a JVM of its own, which the test kills and restarts on the same store. It reports each
// step on stdout, one flushed line at a time, so the test knows what had happened before the kill.
//
//   send URL DIR FROM COUNT
//       prints `ready` once the store is open, then sends {"n":FROM} … {"n":COUNT-1}, printing
//       `sent <id> <n>` after each send returned (`failed <id> <reason> <why>` for a message that
//       will not be acknowledged); waits until nothing is pending and prints `done`.
//   read URL DIR LAST_SEQ PROCESS_MS
//       prints `ready`, `open` once connected, then `got <id> <seq> <redelivered 0|1>` for each
//       message, each followed by PROCESS_MS of "processing" (a kill then leaves the message in
//       hand); after seq LAST_SEQ it prints `done`.

package dev.steadyws

import java.io.File
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

fun main(args: Array<String>): Unit = runBlocking {
    val (mode, url, directory) = args
    Socket(quick(url) { store = StoreConfig(File(directory)) }).use { ws ->
        report("ready")
        when (mode) {
            "send" -> sendAll(ws, from = args[3].toInt(), count = args[4].toInt())
            "read" -> readUntil(ws, lastSeq = args[3].toULong(), processing = args[4].toLong().milliseconds)
            else -> error("unknown mode $mode")
        }
    }
    report("done")
}

private fun report(line: String) {
    println(line)
    System.out.flush()
}

private suspend fun CoroutineScope.sendAll(ws: Socket, from: Int, count: Int) {
    val failures = launch {
        ws.events.collect { if (it is SocketEvent.SendFailed) report("failed ${it.id} ${it.reason} ${it.message}") }
    }
    ws.connect()
    for (n in from until count) {
        report("sent ${ws.send("""{"n":$n}""")} $n")
        delay(3) // a steady trickle, so that kills land between sends, acks and resends
    }
    withTimeout(60.seconds) { while (ws.pending().isNotEmpty()) delay(20) }
    failures.cancelAndJoin()
}

private suspend fun readUntil(ws: Socket, lastSeq: ULong, processing: Duration) {
    ws.connect()
    ws.waitOpen()
    report("open")
    ws.messages.first { message ->
        report("got ${message.id} ${message.seq} ${if (message.redelivered) 1 else 0}")
        delay(processing)
        message.seq == lastSeq
    }
}
