// The one exception of the Kotlin layer, SteadyWsException: its `kind` is the native socket's
// ErrorKind, the same as Python's and Swift's, and the generated NativeException becomes it in
// one place (`toSteadyWs`).

package dev.steadyws

/**
 * Everything [Socket] throws (misuse aside: a non-positive `ttl` is an
 * [IllegalArgumentException]). [kind] says what happened, the same kind in every language (see
 * [ErrorKind] for when each is thrown); the message says what is wrong and what to do.
 *
 * ```
 * try {
 *     ws.sendAndWait(json, timeout = 10.seconds)
 * } catch (e: SteadyWsException) {
 *     if (e.kind != ErrorKind.TIMED_OUT) throw e   // still queued: it is sent once back online
 * }
 * ```
 *
 * @property messageId the message concerned: set by the waits ([Socket.sendAndWait],
 *   [Socket.waitAcked]) and by [Socket.messages] for a send failure.
 * @property sendFailure why the message will not be acknowledged, for [ErrorKind.SEND_FAILED].
 */
class SteadyWsException(
    val kind: ErrorKind,
    message: String,
    val messageId: String? = null,
    val sendFailure: SendFailureKind? = null,
    cause: Throwable? = null,
) : Exception(message, cause)

/** The native socket's error, one to one. */
internal fun NativeException.toSteadyWs(): SteadyWsException = when (this) {
    is NativeException.Failure -> SteadyWsException(kind, detail, messageId, sendFailure, this)
}
