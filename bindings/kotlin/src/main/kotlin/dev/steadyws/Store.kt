// The durable store as Kotlin types: `StoreConfig` sets the three generated `store*` fields of
// `SocketConfig` in one value, and `PendingMessage.createdAt` gives the generated epoch
// milliseconds as an `Instant`.

package dev.steadyws

import java.io.File
import java.time.Instant

/**
 * Where a socket keeps its outbox, resume cursor, dedup window and client id, so that they
 * survive a process kill: the SQLite file `<directory>/<name>.steadyws`. Set it with
 * `Socket(url) { store = StoreConfig(dir) }`.
 *
 * @param directory created if missing. On Android, `context.noBackupFilesDir`: the store holds
 *   the client id, which must not be restored onto a second device by Auto Backup.
 * @param name several sockets can share one directory, each with its own name: 1 to 64 of
 *   `A-Z a-z 0-9 . _ -`, not starting with a dot (else kind [ErrorKind.INVALID_OPTIONS]). One socket,
 *   in one process, has a store open at a time; a second one throws kind [ErrorKind.STORE_IN_USE].
 * @param syncEveryCommit also survive power loss and OS crashes: fsync at every commit (each
 *   [Socket.send], [Socket.cancel] and each message taken), which costs milliseconds
 *   on some storage. Without it, what was committed survives the app's process being killed
 *   (SIGKILL, the low-memory killer, a crash), not a power cut.
 */
data class StoreConfig(
    val directory: File,
    val name: String = "default",
    val syncEveryCommit: Boolean = false,
)

/**
 * The durable store ([StoreConfig]), or null to keep everything in memory (the default). A store
 * needs envelope mode: with [SocketConfig.rawMode] the socket refuses it with
 * kind [ErrorKind.INVALID_OPTIONS].
 */
var SocketConfig.store: StoreConfig?
    get() = storeDirectory?.let { StoreConfig(File(it), storeName, storeSyncEveryCommit) }
    set(value) {
        storeDirectory = value?.directory?.path
        if (value != null) {
            storeName = value.name
            storeSyncEveryCommit = value.syncEveryCommit
        }
    }

/**
 * When [Socket.send] queued the message (wall clock), read from [PendingMessage.createdAtMs].
 * On Android below API 26 `Instant` needs core library desugaring; `createdAtMs` works everywhere.
 */
val PendingMessage.createdAt: Instant
    get() = Instant.ofEpochMilli(createdAtMs.toLong())
