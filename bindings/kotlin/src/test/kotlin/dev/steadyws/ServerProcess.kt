package dev.steadyws

import java.io.File
import java.net.ServerSocket
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/**
 * The reference server (`$STEADYWS_SERVER`) as a child process on 127.0.0.1. [kill] is a SIGKILL;
 * [close] kills too, so `use {}` never leaves a process behind.
 */
class ServerProcess private constructor(private val process: Process, val url: String) : AutoCloseable {
    /** `127.0.0.1:PORT`, to restart on the same address. */
    val listen: String = url.removePrefix("ws://").substringBefore('/')

    /** SIGKILL (Process.destroyForcibly on Linux), then reap. */
    fun kill() {
        process.destroyForcibly()
        check(process.waitFor(10, TimeUnit.SECONDS)) { "server did not exit after SIGKILL" }
    }

    /**
     * SIGSTOP (`true`) or SIGCONT (`false`): a stopped server keeps its connections open and
     * answers nothing, a dead server behind a live link.
     */
    fun pause(stopped: Boolean) {
        val signal = if (stopped) "-STOP" else "-CONT"
        val kill = ProcessBuilder("kill", signal, process.pid().toString()).inheritIO().start()
        check(kill.waitFor(10, TimeUnit.SECONDS) && kill.exitValue() == 0) { "kill $signal failed" }
    }

    override fun close() {
        if (process.isAlive) {
            pause(false)
            kill()
        }
    }

    companion object {
        val binary: File by lazy {
            val path = System.getenv("STEADYWS_SERVER")
                ?: error("set STEADYWS_SERVER to the steadyws-server binary (test.sh does)")
            File(path).also { require(it.canExecute()) { "STEADYWS_SERVER=$path is not an executable" } }
        }

        /** Start on [listen] (`127.0.0.1:0` picks a port) and wait for its `listening on` line. */
        fun start(listen: String = "127.0.0.1:0", vararg args: String): ServerProcess {
            val process = ProcessBuilder(listOf(binary.path, "--listen", listen) + args)
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .apply { environment()["RUST_LOG"] = "warn" }
                .start()
            val lines = LinkedBlockingQueue<String>()
            Thread {
                process.inputStream.bufferedReader().useLines { seq -> seq.forEach { lines.add(it) } }
            }.apply { isDaemon = true; name = "steadyws-server-stdout" }.start()
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20)
            while (System.nanoTime() < deadline) {
                val line = lines.poll(100, TimeUnit.MILLISECONDS)
                if (line != null && line.startsWith("listening on ")) {
                    return ServerProcess(process, line.removePrefix("listening on ").trim())
                }
                if (line == null && !process.isAlive) break
            }
            process.destroyForcibly()
            error("${binary.path} --listen $listen did not report its address within 20 s")
        }

        /** A port that was free a moment ago (for a URL nothing listens on). */
        fun freePort(): Int = ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress()).use { it.localPort }
    }
}
