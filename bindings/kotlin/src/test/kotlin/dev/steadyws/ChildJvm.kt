package dev.steadyws

import java.io.File
import java.net.URLClassLoader
import java.util.Optional
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds

/**
 * A second JVM running a `main` of the test sources, with this test's classpath and native library
 * settings: the process the SIGKILL tests kill. Its stdout comes line by line through [nextLine],
 * its stderr goes to the test's. [kill] is a SIGKILL; [close] kills too, so `use {}` never leaves a
 * process behind.
 */
class ChildJvm private constructor(private val process: Process, private val what: String) : AutoCloseable {
    /** Lines of stdout; an empty Optional once it ended. */
    private val output = LinkedBlockingQueue<Optional<String>>()

    init {
        Thread {
            try {
                process.inputStream.bufferedReader().useLines { lines -> lines.forEach { output.add(Optional.of(it)) } }
            } finally {
                output.add(Optional.empty())
            }
        }.apply { isDaemon = true; name = "child-stdout" }.start()
    }

    /** The next line of stdout, or null once it ended (the process exited or was killed). */
    fun nextLine(timeout: Duration = 30.seconds): String? {
        val line = output.poll(timeout.inWholeMilliseconds, TimeUnit.MILLISECONDS)
            ?: throw AssertionError("$what printed nothing for $timeout (alive: ${process.isAlive})")
        if (!line.isPresent) output.add(line) // stays ended for the next call
        return line.orElse(null)
    }

    /**
     * SIGKILL, then reap. Through the [ProcessHandle]: `Process.destroyForcibly()` sends the same
     * signal but also closes our end of the child's stdout, which would throw away the lines it
     * printed just before it died.
     */
    fun kill() {
        process.toHandle().destroyForcibly()
        check(process.waitFor(10, TimeUnit.SECONDS)) { "$what did not exit after SIGKILL" }
    }

    /** Wait for the process to exit on its own; its exit status. */
    fun awaitExit(timeout: Duration = 30.seconds): Int {
        if (!process.waitFor(timeout.inWholeMilliseconds, TimeUnit.MILLISECONDS)) {
            throw AssertionError("$what did not exit within $timeout")
        }
        return process.exitValue()
    }

    override fun close() {
        if (process.isAlive) kill()
    }

    companion object {
        /**
         * This JVM's classpath as the child needs it: JUnit's console launcher loads the tests and
         * steadyws.jar through a class loader of its own, so `java.class.path` alone is only JUnit.
         */
        private val classPath: String by lazy {
            val loaded = generateSequence(ChildJvm::class.java.classLoader) { it.parent }
                .filterIsInstance<URLClassLoader>()
                .flatMap { it.urLs.asSequence() }
                .map { File(it.toURI()).path }
            (loaded + System.getProperty("java.class.path").split(File.pathSeparator))
                .filter { it.isNotEmpty() }
                .distinct()
                .joinToString(File.pathSeparator)
        }

        /** Start `java … [mainClass] [args]`. */
        fun start(mainClass: String, vararg args: String): ChildJvm {
            val java = File(System.getProperty("java.home"), "bin/java").path
            // The native library is found the way this JVM finds it (inside steadyws.jar unless set).
            val libraryPaths = listOf("java.library.path", "jna.library.path")
                .mapNotNull { key -> System.getProperty(key)?.let { "-D$key=$it" } }
            // A short-lived JVM: start fast rather than run fast.
            val command = listOf(java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m") +
                libraryPaths + listOf("-cp", classPath, mainClass) + args
            val process = ProcessBuilder(command)
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start()
            process.outputStream.close()
            return ChildJvm(process, "$mainClass ${args.joinToString(" ")}")
        }
    }
}
