// The exceptions of the Kotlin layer: one sealed base, SteadyWsException, for everything
// SteadySocket throws. The generated SteadyException (from the native side) is wrapped, and stays
// reachable as `error` and `cause`.

package dev.steadyws

import kotlin.time.Duration

/**
 * The base of every exception [SteadySocket] throws (misuse aside: see [SteadySocket]). Sealed,
 * so a `when` over it is exhaustive.
 */
sealed class SteadyWsException(message: String, cause: Throwable? = null) : Exception(message, cause)

/**
 * The options were refused when the socket was created: [error] is
 * [SteadyException.InvalidUrl] (the message gives the `ws://` form to use) or
 * [SteadyException.InvalidConfig] (which setting, and what is accepted).
 */
class InvalidOptionsException(val error: SteadyException) : SteadyWsException(error.explanation, error)

/**
 * The message cannot be queued because of what it is: [error] is [SteadyException.NotJson],
 * [SteadyException.WrongMode] (text or binary frames need raw mode, JSON needs envelope mode) or
 * [SteadyException.MessageTooLarge] (larger than [SocketOptions.outboxMaxMessageBytes], 1 MiB).
 * Sending it again will not help.
 */
class InvalidMessageException(val error: SteadyException) : SteadyWsException(error.explanation, error)

/**
 * The outbox is full ([SocketOptions.outboxMaxMessages] / [SocketOptions.outboxMaxBytes], reject-new
 * policy): nothing was queued. It drains as the server acknowledges; retry later, or set
 * [SocketOptions.outboxDropOldest].
 */
class OutboxFullException(val error: SteadyException) : SteadyWsException(error.explanation, error)

/**
 * Message [id] will not be acknowledged: [reason] says why ([SendFailureKind.EXPIRED],
 * [SendFailureKind.DROPPED], [SendFailureKind.REJECTED] or [SendFailureKind.CANCELLED] by
 * [SteadySocket.cancel]), [detail] explains it (for a rejection, the server's code and text).
 * Thrown by [SteadySocket.sendAndWait] and [SteadySocket.awaitAcked] for the message they wait
 * for, and by [SteadySocket.messages] for any message of this socket (on [SteadySocket.events] it
 * is the [SocketEvent.SendFailed] event).
 */
class SendFailedException(
    val id: String,
    val reason: SendFailureKind,
    val detail: String,
) : SteadyWsException("message $id ${reason.name.lowercase()}: $detail")

/**
 * Message [id] was not acknowledged within [timeout]. It stays queued and is still sent; its
 * [SocketEvent.Acked] (or [SocketEvent.SendFailed]) arrives as an event, and [SteadySocket.awaitAcked]
 * can wait again.
 */
class SendTimeoutException(
    val id: String,
    val timeout: Duration,
) : SteadyWsException("message $id was not acknowledged within $timeout; it stays queued and is still sent")

/**
 * [SteadySocket.awaitAcked] was given an id that is neither queued nor among the remembered
 * outcomes (the last 4096): not an id from this socket's `send`, or acknowledged long ago.
 */
class UnknownMessageException(val id: String) :
    SteadyWsException("no message $id is queued on this socket, and its outcome is not remembered")

/**
 * The socket is closed: [SteadySocket.close] was called before or during the operation. [id] is
 * the message being waited for, if any (it was not acknowledged before the close).
 */
class SocketClosedException(val id: String? = null) :
    SteadyWsException(if (id == null) "the socket is closed" else "the socket was closed before message $id was acknowledged")

/**
 * The socket gave up connecting ([SocketState.Failed]): [reason] says why and what to do;
 * [retryable] is true when `connect()` later may succeed (the attempt budget ran out), false when
 * the server refused this client.
 */
class ConnectionFailedException(
    val reason: String,
    val retryable: Boolean,
) : SteadyWsException(reason)

/** [SteadySocket.awaitOpen] timed out; the socket keeps trying. [state] is where it was then. */
class OpenTimeoutException(
    val timeout: Duration,
    val state: SocketState,
) : SteadyWsException("the socket did not open within $timeout (now: $state)")

/**
 * Another socket already has this store open (in this process or in another one): a store has
 * one owner at a time. Close that socket first, or give this one a store of its own
 * ([StoreOptions.name]). [error] is [SteadyException.StoreInUse].
 */
class StoreInUseException(val error: SteadyException) : SteadyWsException(error.explanation, error)

/**
 * The store was written by a newer steadyws (the app was downgraded): it was refused and left as
 * it is, so the newer version can still read it. Update the app, or use another
 * [StoreOptions.name] (the messages in the refused store are then not sent). [error] is
 * [SteadyException.StoreNewerFormat].
 */
class StoreNewerFormatException(val error: SteadyException) : SteadyWsException(error.explanation, error)

/**
 * The store could not be opened or written (I/O error, permission, disk full; the message says
 * which file and why). From [SteadySocket.send] and [SteadySocket.sendAndWait] it means the
 * message was **not** queued; from [SteadySocket.cancel], that this socket no longer sends the
 * message but the store could not record it, so it comes back after a restart (cancel it again
 * then). [error] is [SteadyException.StoreFailed].
 */
class StoreFailedException(val error: SteadyException) : SteadyWsException(error.explanation, error)

/**
 * Thrown by [SteadySocket.messages] (on [SteadySocket.events] it is the
 * [SocketEvent.StoreRecovered] event, the first one): the store file was damaged (truncated,
 * overwritten) and was rebuilt. [problem] says what was wrong with it; the [recoveredMessages]
 * pending messages that could be read back were kept and are sent, any others were lost. The
 * damaged file was moved to [movedTo] for inspection (null: it could not be kept). Collect
 * [SteadySocket.messages] again to read on.
 */
class StoreRecoveredException(
    val problem: String,
    val recoveredMessages: UInt,
    val movedTo: String?,
) : SteadyWsException(
    "the store was damaged ($problem) and rebuilt with the $recoveredMessages pending message(s) it " +
        "still held; the damaged file was " + (movedTo?.let { "moved to $it" } ?: "not kept"),
)

/** The native error as the layer's exception. */
internal fun SteadyException.toSteadyWs(): SteadyWsException = when (this) {
    is SteadyException.InvalidUrl, is SteadyException.InvalidConfig -> InvalidOptionsException(this)
    is SteadyException.NotJson, is SteadyException.WrongMode, is SteadyException.MessageTooLarge ->
        InvalidMessageException(this)
    is SteadyException.OutboxFull -> OutboxFullException(this)
    is SteadyException.StoreInUse -> StoreInUseException(this)
    is SteadyException.StoreNewerFormat -> StoreNewerFormatException(this)
    is SteadyException.StoreFailed -> StoreFailedException(this)
}

private val SteadyException.explanation: String
    get() = message ?: this::class.simpleName ?: "steadyws error"
