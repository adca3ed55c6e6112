// The Swift-shaped layer over the generated bindings (Generated/SteadyWS.swift): `SteadySocket`,
// with `send` that returns the id at once, waits that observe acks and the state on the side
// (`sendAndWait`, `waitAcked`, `waitOpen`), one reader of events (`events`, `messages`) pulling
// from the native queue on demand, and one error type, `SteadyWSError`. Written by hand; the generated file is
// build output.
//
// Concurrency: every type here is `Sendable`. Shared mutable state lives in final classes whose
// stored properties are guarded by an `NSLock`, taken only in synchronous methods and never held
// across an `await` or while a continuation is resumed.

import Foundation

// MARK: - Errors

/// Everything `SteadySocket` throws, but for Swift's own `CancellationError` when a task is
/// cancelled before anything was queued or while it waits for the socket to open (a cancelled
/// wait for a message throws `.waitCancelled(id:)`, which carries the id).
///
/// Each error prints as a sentence that says what happened and what to do:
/// `print(error)`, `error.localizedDescription` and `"\(error)"` give the same text.
public enum SteadyWSError: Error, Sendable, Hashable, LocalizedError, CustomStringConvertible {
    /// What was given cannot be used: refused at once, nothing was queued or created.
    case invalid(Invalid, message: String)
    /// The outbox is full (policy: reject new). Nothing was queued; retry once acks drained it,
    /// or raise `SocketOptions.outboxMaxMessages` / `outboxMaxBytes`.
    case outboxFull(message: String)
    /// The message will not be stored by the server. `reason` is `.expired` (its `ttl` ran
    /// out), `.dropped` (evicted from a full outbox, drop-oldest policy), `.rejected` (the
    /// server refused it; `message` has its code and explanation) or `.cancelled` (the app
    /// called `cancel(id)`; a copy written before the cancel may still have reached the server).
    case sendFailed(id: String, reason: SendFailureKind, message: String)
    /// The time limit passed first. For a message (`id` set) nothing is lost: it stays queued,
    /// is still sent, and its `.acked` event follows; `waitAcked(id)` can wait again.
    /// For `waitOpen` (`id` nil) the socket goes on trying.
    case timedOut(id: String?)
    /// The socket was closed (`close()`, or released) before the wait ended, or the call came
    /// after it was closed. `id` is the message waited for (`sendAndWait`, `waitAcked`): it was
    /// not confirmed. A closed socket stays closed: make a new one.
    case closed(id: String?)
    /// The socket gave up (state `.failed`): the server refused this client (`retryable` false)
    /// or the attempt budget ran out (`retryable` true). `connect()` starts over.
    case connectionFailed(reason: String, retryable: Bool)
    /// `waitAcked` was given an id that is neither queued nor among the last 4096 outcomes.
    case unknownMessage(id: String)
    /// Another socket, in this process or in another one, has this store open: a store has one
    /// owner at a time. Close the other socket first, or give this one another
    /// `StoreOptions.name`.
    case storeInUse(message: String)
    /// The store was written by a newer version of steadyws. It was refused, its content left as
    /// it was (not moved aside, not rebuilt): update the app, or use another store.
    case storeNewerFormat(message: String)
    /// The store could not be opened or written (I/O error, permission, disk full; the message
    /// says which). Thrown by `send` / `sendAndWait`, it means the message was NOT queued.
    case storeFailed(message: String)
    /// The task waiting for message `id` (`sendAndWait`, `waitAcked`) was cancelled. Only the
    /// wait ended: the message stays queued and is still sent. `waitAcked(id)` waits again,
    /// `cancel(id)` withdraws it.
    case waitCancelled(id: String)
    /// Another loop is reading this socket's `events` or `messages`: a socket has one reader.
    /// Read in one task and fan out from there; a loop that ends (`break`, an error, the end of
    /// the stream, cancellation) lets the next one read.
    case alreadyReading
    /// Thrown by `messages` (on `events` it is the `.storeRecovered` event): the store file was
    /// damaged and rebuilt; `recoveredMessages` pending messages were read back and are sent,
    /// any others were lost. The damaged file was moved to `movedTo` for inspection. Iterate
    /// `messages` again to read on.
    case storeRecovered(problem: String, recoveredMessages: UInt32, movedTo: String?)

    /// What was wrong with the input of a call that was refused at once.
    public enum Invalid: Sendable, Hashable {
        /// The URL is not a usable `ws://` or `wss://` URL (the message names the form to use).
        case url
        /// A setting of `SocketOptions` is out of range (the message names it).
        case config
        /// The payload is not JSON (envelope mode).
        case notJSON
        /// The payload kind needs the other mode (`send` in raw mode, `sendText` in envelope mode).
        case wrongMode
        /// The message alone is larger than the outbox accepts (`outboxMaxMessageBytes`, 1 MiB).
        case messageTooLarge
    }

    /// The generated bindings' error, as this layer throws it.
    public init(_ error: SteadyError) {
        switch error {
        case let .InvalidUrl(message: message):
            self = .invalid(.url, message: message)
        case let .InvalidConfig(message: message):
            self = .invalid(.config, message: message)
        case let .NotJson(message: message):
            self = .invalid(.notJSON, message: message)
        case let .WrongMode(message: message):
            self = .invalid(.wrongMode, message: message)
        case let .MessageTooLarge(message: message):
            self = .invalid(.messageTooLarge, message: message)
        case let .OutboxFull(message: message):
            self = .outboxFull(message: message)
        case let .StoreInUse(message: message):
            self = .storeInUse(message: message)
        case let .StoreNewerFormat(message: message):
            self = .storeNewerFormat(message: message)
        case let .StoreFailed(message: message):
            self = .storeFailed(message: message)
        }
    }

    public var description: String {
        switch self {
        case let .invalid(_, message), let .outboxFull(message), let .storeInUse(message),
             let .storeNewerFormat(message), let .storeFailed(message):
            return message
        case let .sendFailed(id, reason, message):
            return "message \(id) will not be stored (\(reason)): \(message)"
        case let .timedOut(id?):
            return "message \(id) was not acknowledged within the time limit; "
                + "it stays queued and is still sent (an .acked event follows)"
        case .timedOut(nil):
            return "the socket did not open within the time limit; it goes on trying"
        case let .closed(id?):
            return "the socket was closed before message \(id) was acknowledged: "
                + "close() was called or the socket was released; send it again on a new socket"
        case .closed(nil):
            return "the socket is closed: close() was called or it was released; make a new socket"
        case let .connectionFailed(reason, _):
            return "the socket gave up: \(reason)"
        case let .unknownMessage(id):
            return "no message \(id) is queued and its outcome is no longer remembered "
                + "(only the last 4096 are): use the id send() returned, soon after"
        case let .waitCancelled(id):
            return "the task waiting for message \(id) was cancelled; the message stays queued "
                + "and is still sent: waitAcked(\"\(id)\") waits again, cancel(\"\(id)\") withdraws it"
        case .alreadyReading:
            return "this socket's events are already being read by another loop: a socket has one "
                + "reader (events and messages share it); read in one task and fan out from there"
        case let .storeRecovered(problem, recovered, movedTo):
            return "the store was damaged (\(problem)) and rebuilt with the \(recovered) pending "
                + "message(s) it still held; the damaged file was "
                + (movedTo.map { "moved to \($0)" } ?? "not kept")
        }
    }

    public var errorDescription: String? { description }
}

// `SteadyError` is the generated API's error (thrown by `NativeSocket`); `SteadySocket` maps it
// to `SteadyWSError`. It is flat: every case carries only `message`, the Rust error's text.
extension SteadyError: CustomStringConvertible {
    /// What is wrong and what to do, as the Rust library words it.
    public var message: String {
        switch self {
        case let .InvalidUrl(message: message),
             let .InvalidConfig(message: message),
             let .NotJson(message: message),
             let .WrongMode(message: message),
             let .MessageTooLarge(message: message),
             let .OutboxFull(message: message),
             let .StoreInUse(message: message),
             let .StoreNewerFormat(message: message),
             let .StoreFailed(message: message):
            return message
        }
    }

    /// The message alone, so `print(error)` and `error.localizedDescription` (the generated
    /// `errorDescription` is `String(reflecting:)`, which uses this) read as a sentence.
    public var description: String { message }
}

/// Run a call of the generated API, throwing its `SteadyError` as `SteadyWSError`.
func mappingErrors<T>(_ call: () throws -> T) throws -> T {
    do {
        return try call()
    } catch let error as SteadyError {
        throw SteadyWSError(error)
    }
}


// MARK: - Conveniences on the generated types

extension SocketState {
    /// True when connected.
    public var isOpen: Bool { self == .open }
}

extension StateCause {
    /// The connection problem behind the change: set for `.attemptFailed` and
    /// `.connectionDropped`.
    public var problem: ConnectionProblem? {
        switch self {
        case let .attemptFailed(problem), let .connectionDropped(problem):
            return problem
        default:
            return nil
        }
    }
}

extension SocketEvent {
    /// The new state, for a `stateChanged` event.
    public var stateChange: SocketState? {
        if case let .stateChanged(state, _) = self { return state }
        return nil
    }

    /// Why the state changed, for a `stateChanged` event.
    public var cause: StateCause? {
        if case let .stateChanged(_, cause) = self { return cause }
        return nil
    }

    /// The id the server acknowledged, for an `acked` event.
    public var ackedId: String? {
        if case let .acked(id) = self { return id }
        return nil
    }
}

extension SocketOptions {
    /// Options for `url` with the defaults, adjusted by `configure`:
    /// `SocketOptions("wss://…") { $0.background = .disconnectAfterGrace }`.
    public init(_ url: String, configure: (inout SocketOptions) -> Void) {
        self.init(url: url)
        configure(&self)
    }
}

/// A message from the server, as `SteadySocket.messages` yields it.
public struct ReceivedMessage: Sendable, Hashable {
    /// The server's id (envelope mode).
    public let id: String?
    /// Its place in the server's stream (envelope mode).
    public let seq: UInt64?
    /// The server's time, ms since the epoch (envelope mode).
    public let ts: UInt64?
    /// The content.
    public let data: MessageData
    /// The resume cursor right after this message: store it with the message, in one
    /// transaction, and pass it back as `SocketOptions.resumeLastSeq` / `resumeLastTs`.
    public let position: ResumePosition
    /// True only for a message this app was handed before a crash (the process was killed while
    /// the message was in hand, before it asked for the next one), so it may have processed it
    /// already: make its handling idempotent, or check it against what was stored. Every other
    /// message is delivered once across crashes. Needs a store (`SocketOptions.store`); without
    /// one the flag is always false.
    public let redelivered: Bool

    /// The message of a `.message` event; nil for any other event.
    public init?(_ event: SocketEvent) {
        guard case let .message(id, seq, ts, data, position, redelivered) = event else {
            return nil
        }
        self.id = id
        self.seq = seq
        self.ts = ts
        self.data = data
        self.position = position
        self.redelivered = redelivered
    }

    /// The JSON text, for a message in envelope mode.
    public var json: String? {
        if case let .json(json) = data { return json }
        return nil
    }
}

extension PendingMessage {
    /// When `send` queued the message (the wall clock then), from `createdAtMs`. A message
    /// restored from a store keeps its original time.
    public var createdAt: Date {
        Date(timeIntervalSince1970: TimeInterval(createdAtMs) / 1_000)
    }

    /// The content, as `ReceivedMessage.data` gives it for a message from the server.
    public var data: MessageData { .json(json: json) }
}

/// Where a socket keeps its outbox, resume cursor, dedup window and client id, so that they
/// survive the app being killed: one SQLite file, `<directory>/<name>.steadyws`.
///
/// ```swift
/// let support = try FileManager.default.url(
///     for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
/// let socket = try SteadySocket(url: "wss://chat.example.com/ws") { options in
///     options.store = StoreOptions(directory: support)
/// }
/// ```
public struct StoreOptions: Sendable, Hashable {
    /// The name used when none is given.
    public static let defaultName = "default"

    /// The directory of the store file.
    public var directory: URL
    /// The store's name: several sockets can keep their stores in one directory, each under its
    /// own name (one socket at a time per store).
    public var name: String
    /// Also survive power loss and OS crashes: every commit waits for the disk (fsync). Without
    /// it (the default) everything committed survives the app's process being killed, which is
    /// what iOS does to suspended apps, but the last commits may be lost if the whole device
    /// goes down.
    public var syncEveryCommit: Bool

    public init(directory: URL, name: String = StoreOptions.defaultName, syncEveryCommit: Bool = false) {
        self.directory = directory
        self.name = name
        self.syncEveryCommit = syncEveryCommit
    }

    /// The store file, `<directory>/<name>.steadyws`.
    public var file: URL {
        directory.appendingPathComponent("\(name).steadyws")
    }
}

extension SocketOptions {
    /// The durable store (nil: memory only, the default). Sets `storeDirectory`, `storeName` and
    /// `storeSyncEveryCommit`. Needs envelope mode: with `rawMode` the socket is refused
    /// (`SteadyWSError.invalid(.config, …)`).
    public var store: StoreOptions? {
        get {
            guard let storeDirectory else { return nil }
            return StoreOptions(
                directory: URL(fileURLWithPath: storeDirectory, isDirectory: true),
                name: storeName,
                syncEveryCommit: storeSyncEveryCommit
            )
        }
        set {
            storeDirectory = newValue?.directory.path
            storeName = newValue?.name ?? StoreOptions.defaultName
            storeSyncEveryCommit = newValue?.syncEveryCommit ?? false
        }
    }
}

// MARK: - SteadySocket

/// A WebSocket that stays connected, resends what the server has not acknowledged, drops
/// duplicates and resumes where it left off: the Swift face of the native `NativeSocket`.
///
/// ```swift
/// let socket = try SteadySocket(url: "wss://chat.example.com/ws")
/// socket.connect()
/// let id = try socket.send(#"{"text":"hello"}"#)        // queued; returns the id at once
/// try await socket.waitAcked(id, timeout: 10)             // optional: until the server stored it
/// for try await event in socket.events {                  // the one reader of this socket
///     switch event {
///     case let .message(_, seq, _, .json(json), position, _): print(seq ?? 0, json, position)
///     case let .stateChanged(state, cause): print("now \(state)", cause.problem?.message ?? "")
///     default: break
///     }
/// }
/// ```
///
/// **Threads and actors.** `SteadySocket` is `Sendable`: call any method from any thread, task or
/// actor, the main actor included. The synchronous methods never block (they hand the command to
/// the native socket and return); the `async` ones suspend without blocking a thread. Nothing runs
/// on the main thread unless you iterate `events` there: the native pull behind `events` runs on
/// Swift's global concurrent executor, and each event is then handed to the task that iterates
/// (on the main actor only if that task is main-actor isolated, e.g. SwiftUI's `.task`). The
/// network work itself runs on the Rust runtime's two shared threads; no thread per socket.
///
/// **One reader.** The native queue is the only buffer, bounded by
/// `SocketOptions.inboxMaxEvents` / `inboxMaxBytes`; while it is full the socket stops reading
/// (TCP pushes back on the server) and nothing is dropped. `events` (or `messages`) pulls from it
/// only when its reader asks for the next element. One loop at a time is the reader: see
/// `events` for what happens when two try.
///
/// **Waiting never eats events.** `sendAndWait`, `waitAcked` and `waitOpen` observe the outcome
/// on the side; the `.acked` and `.stateChanged` events still come through `events`.
///
/// **Closing.** `close()` (also done when the socket is released) ends it for good: the state is
/// `.closed`, every pending wait throws `SteadyWSError.closed` at once, `events` delivers what is
/// left and ends.
///
/// **Durable outbox.** With `SocketOptions.store`, the outbox, the resume cursor, the dedup
/// window and the client id live in an SQLite file and survive the process being killed: `send`
/// returns once the message is on disk, the next socket on the same store sends what was left
/// first (`pending()` lists it at once), and reading resumes after the last message the app took.
/// `events` then takes one event per native call, so at most the message in hand at a crash is
/// delivered again, flagged `redelivered`.
public final class SteadySocket: Sendable {
    /// The generated object, for what this layer does not wrap. Do not read its events
    /// (`nextEvent`, `nextEvents`, `setListener`) while `events` is used: each event goes to one
    /// reader only.
    public let native: NativeSocket
    /// The options the socket was made with (the app adapter reads its background policy here).
    public let options: SocketOptions
    private let reader: EventReader
    /// The native waits in progress, each ended when its task is cancelled.
    let waits = NativeWaits()
    /// Whether `close()` was called, and what it runs then (the app adapters detach themselves).
    let closing = Closing()

    /// The number of events one native call takes at most (`nextEvents(max:)`) without a store.
    public static let batchSize: UInt32 = 256
    /// The number of events one native call takes with a store: one, so that the message in hand
    /// is the only one a crash can deliver again (taking the next event commits the last one).
    public static let durableBatchSize: UInt32 = 1

    /// Validate `options` and create the socket (idle until `connect()`). With a store, the store
    /// is opened (created when missing) and what it kept is restored: `pending()` lists the
    /// messages left unacknowledged at once, and they are sent first once connected.
    /// - Throws: `SteadyWSError.invalid(.url, …)` or `.invalid(.config, …)`, with a message that
    ///   says what to fix; with a store, `.storeInUse`, `.storeNewerFormat` or `.storeFailed`.
    public init(options: SocketOptions) throws {
        let native = try mappingErrors { try NativeSocket(options: options) }
        self.native = native
        self.options = options
        let durable = options.storeDirectory != nil
        reader = EventReader(native: native, batchSize: durable ? Self.durableBatchSize : Self.batchSize)
    }

    /// A socket for `url` with the default options, adjusted by `configure`.
    public convenience init(url: String, configure: (inout SocketOptions) -> Void = { _ in }) throws {
        var options = SocketOptions(url: url)
        configure(&options)
        try self.init(options: options)
    }

    deinit {
        close()
    }

    // MARK: Commands

    /// Start connecting, and keep reconnecting. Does nothing once closed.
    public func connect() {
        guard !closing.isClosed else { return }
        native.connect()
    }

    /// Close the connection gracefully and stop reconnecting; queued messages wait for the next
    /// `connect()`. The socket stays usable (`close()` is the end).
    public func disconnect() {
        guard !closing.isClosed else { return }
        native.disconnect()
    }

    /// Close for good: the connection is closed, reconnecting stops, the state becomes `.closed`
    /// (a `stateChanged` event with cause `.app`), every pending `sendAndWait`, `waitAcked` and
    /// `waitOpen` throws `SteadyWSError.closed` at once, and `events` delivers what is left, then
    /// ends. Later calls throw `.closed` (the waits, `send`) or do nothing (commands). Also done
    /// when the socket is released; calling it again does nothing.
    public func close() {
        guard let hooks = closing.close() else { return }
        native.shutdown()
        for hook in hooks {
            hook()
        }
    }

    /// Tell the socket whether the app is visible (`attachToApp()` does it on iOS). With a
    /// store, `.background` also closes the store file between writes, so the suspended app holds
    /// no file lock; `.foreground` keeps it open again.
    public func setAppState(_ state: AppLifecycle) {
        guard !closing.isClosed else { return }
        native.setAppState(state: state)
    }

    /// Tell the socket what reachability reports (`attachToApp()` and `monitorNetwork()` do it on
    /// Apple platforms).
    public func setNetwork(_ status: NetworkStatus) {
        guard !closing.isClosed else { return }
        native.setNetwork(status: status)
    }

    /// The current state (`.closed` once `close()` was called).
    public var state: SocketState {
        closing.isClosed ? .closed : native.state()
    }

    /// Counters. `messagesIn` counts the messages the app took from `events`, and
    /// `lastSeq` / `lastTs` are the position of the last one taken.
    public var stats: SocketStats { native.stats() }

    // MARK: Sending

    /// Queue a JSON message and return its id at once, before the server acknowledged it; an
    /// `.acked` event follows once the server stored it, or `.sendFailed` (with the payload).
    ///
    /// Never fails because the network is down: the message waits in the outbox (bounded by
    /// `outboxMaxMessages` / `outboxMaxBytes`) and is resent after a reconnect until acknowledged.
    /// With a `ttl`, it is given up after that long (`.sendFailed` with reason `.expired`).
    ///
    /// With a store, it returns once the message is written to the store file (a disk write;
    /// with `StoreOptions.syncEveryCommit`, an fsync too), so a message whose id was returned
    /// survives the process being killed.
    /// - Throws: `SteadyWSError.invalid` (not JSON, too large, raw mode), `.outboxFull`,
    ///   `.storeFailed` (nothing queued), `.closed`.
    @discardableResult
    public func send(_ json: String, ttl: TimeInterval? = nil) throws -> String {
        guard !closing.isClosed else { throw SteadyWSError.closed(id: nil) }
        return try mappingErrors {
            if let ttl {
                return try native.sendWithTtl(json: json, ttlMs: milliseconds(ttl))
            }
            return try native.send(json: json)
        }
    }

    /// Queue a JSON message and wait until the server acknowledged (stored) it; returns its id.
    ///
    /// `send` then `waitAcked` (the native `waitAcked` answers at once when the outcome is already
    /// known, so an ack cannot slip past), which is what the native `sendAndWait` does; done here
    /// so that every error of the wait carries the id. The wait observes the ack on the side:
    /// the `.acked` event still comes through `events`. Without a `timeout` it may wait as long as
    /// the outage lasts. Cancelling the task before the message is queued throws
    /// `CancellationError` (nothing was sent); after, it ends the wait, not the delivery, with
    /// `SteadyWSError.waitCancelled(id:)`, which carries the id to `waitAcked` or `cancel` later.
    /// - Parameters:
    ///   - ttl: give the message up after this long (`.sendFailed`, reason `.expired`).
    ///   - timeout: stop waiting after this long (`.timedOut(id:)`; the message stays queued).
    /// - Throws: `SteadyWSError` — `.invalid` / `.outboxFull` / `.storeFailed` when it cannot be
    ///   queued, `.sendFailed(id:reason:message:)`, `.timedOut(id:)`, `.closed(id:)`,
    ///   `.waitCancelled(id:)`; `CancellationError` when cancelled before it was queued.
    @discardableResult
    public func sendAndWait(
        _ json: String,
        ttl: TimeInterval? = nil,
        timeout: TimeInterval? = nil
    ) async throws -> String {
        try Task.checkCancellation()
        let id = try send(json, ttl: ttl)
        try await waitAcked(id, timeout: timeout)
        return id
    }

    /// Wait until the server acknowledged the message `id` (from `send`, or listed by `pending()`).
    /// Answers at once when its outcome is already known. Observes on the side: the `.acked` event
    /// still comes through `events`. Cancelling the task ends the wait (the native one included),
    /// not the delivery, with `SteadyWSError.waitCancelled(id:)`.
    /// - Throws: `SteadyWSError.sendFailed(id:reason:message:)`, `.timedOut(id:)`, `.closed(id:)`,
    ///   `.unknownMessage(id:)`, `.waitCancelled(id:)`.
    public func waitAcked(_ id: String, timeout: TimeInterval? = nil) async throws {
        guard !closing.isClosed else { throw SteadyWSError.closed(id: id) }
        let timeoutMs = timeout.map(milliseconds)
        let native = self.native
        let (outcome, cancelled) = await waits.run { cancellation in
            await native.waitAcked(id: id, timeoutMs: timeoutMs, cancellation: cancellation)
        }
        if cancelled, case .timedOut = outcome {
            throw SteadyWSError.waitCancelled(id: id)
        }
        _ = try Self.acknowledged(outcome)
    }

    /// Wait until the socket is open (at once when it is). Observes the state on the side: the
    /// `.stateChanged` events still come through `events`. Cancelling the task ends the wait (the
    /// native one included) with `CancellationError`; the socket goes on connecting.
    /// - Throws: `SteadyWSError.connectionFailed(reason:retryable:)` when the socket gives up
    ///   instead, `.timedOut(id: nil)`, `.closed(id: nil)`; `CancellationError`.
    public func waitOpen(timeout: TimeInterval? = nil) async throws {
        guard !closing.isClosed else { throw SteadyWSError.closed(id: nil) }
        let timeoutMs = timeout.map(milliseconds)
        let native = self.native
        let (outcome, cancelled) = await waits.run { cancellation in
            await native.waitOpen(timeoutMs: timeoutMs, cancellation: cancellation)
        }
        switch outcome {
        case .open:
            return
        case let .failed(reason, retryable):
            throw SteadyWSError.connectionFailed(reason: reason, retryable: retryable)
        case .closed:
            throw SteadyWSError.closed(id: nil)
        case .timedOut where cancelled:
            throw CancellationError()
        case .timedOut:
            throw SteadyWSError.timedOut(id: nil)
        }
    }

    // MARK: Outbox

    /// The messages sent and not acknowledged yet, oldest first (`id`, `json`, `createdAt`):
    /// they are (re)sent in this order. With a store this includes what an earlier run of the app
    /// left unacknowledged: listed at once, before `connect()`, with the ids its `send` returned,
    /// and sent first. Also works without a store (memory only).
    /// - Throws: `SteadyWSError.closed(id: nil)` after `close()`.
    public func pending() throws -> [PendingMessage] {
        guard !closing.isClosed else { throw SteadyWSError.closed(id: nil) }
        return native.pending()
    }

    /// Stop sending the message `id`: true when it was pending, false when it is unknown or
    /// already settled (acknowledged, failed, cancelled). When true, a `.sendFailed` event with
    /// reason `.cancelled` follows and a `sendAndWait` / `waitAcked` on it throws
    /// `SteadyWSError.sendFailed(id:reason: .cancelled, message:)`. With a store, the removal is
    /// on disk when this returns. A copy already written to the connection may still have
    /// reached the server: cancel is "do not send it again", not "take it back".
    /// - Throws: `SteadyWSError.storeFailed` when the store could not be written, `.closed`.
    @discardableResult
    public func cancel(_ id: String) throws -> Bool {
        guard !closing.isClosed else { throw SteadyWSError.closed(id: nil) }
        return try mappingErrors { try native.cancel(id: id) }
    }

    private static func acknowledged(_ outcome: SendOutcome) throws -> String {
        switch outcome {
        case let .acked(id):
            return id
        case let .failed(id, reason, message):
            throw SteadyWSError.sendFailed(id: id, reason: reason, message: message)
        case let .timedOut(id):
            throw SteadyWSError.timedOut(id: id)
        case let .closed(id):
            throw SteadyWSError.closed(id: id)
        case let .unknown(id):
            throw SteadyWSError.unknownMessage(id: id)
        }
    }

    /// Send a text frame unchanged (raw mode: no ids, acks or resend).
    /// - Throws: `SteadyWSError.invalid(.wrongMode, …)` in envelope mode, `.outboxFull`, `.closed`.
    @discardableResult
    public func sendText(_ text: String) throws -> String {
        guard !closing.isClosed else { throw SteadyWSError.closed(id: nil) }
        return try mappingErrors { try native.sendText(text: text) }
    }

    /// Send a binary frame unchanged (raw mode: no ids, acks or resend).
    /// - Throws: `SteadyWSError.invalid(.wrongMode, …)` in envelope mode, `.outboxFull`, `.closed`.
    @discardableResult
    public func sendBinary(_ bytes: Data) throws -> String {
        guard !closing.isClosed else { throw SteadyWSError.closed(id: nil) }
        return try mappingErrors { try native.sendBinary(bytes: bytes) }
    }

    // MARK: Events

    /// Every event, in order, none dropped: the state changes (each with its cause), messages,
    /// acks, send failures, malformed frames and server errors. Events that arrive before anyone
    /// reads wait in the native queue (bounded; the socket stops reading while it is full), so
    /// a loop started late still gets everything. Ends after `close()`, once what was queued
    /// has been delivered.
    ///
    /// ```swift
    /// for try await event in socket.events { … }
    /// ```
    ///
    /// A loop pulls `nextEvents(max: 256)` from the native queue only when it asks for the next
    /// element and the previous batch is used up; taking a message from the native queue commits
    /// it (`stats.messagesIn`, the resume cursor). A batch not used up when a loop stops
    /// (`break`, cancellation) is kept for the next loop, in order.
    ///
    /// With a store, each pull takes one event (`nextEvents(max: 1)`), and only once the loop
    /// asks for the next element, that is once it is done with the previous one: the native call
    /// then durably commits the message in hand. After a crash, reading resumes right after the
    /// last message committed, so at most the one message in hand at the crash comes again, with
    /// `redelivered` set. A `.storeRecovered` event comes first when the store file was damaged.
    ///
    /// **One reader at a time.** Each loop (each iterator) is a reader from its first element
    /// until it ends: `break`, a thrown error, the end of the stream, or the cancellation of its
    /// task (which ends it quietly, like the end of the stream). While one loop reads, another
    /// one over `events` or `messages` throws `SteadyWSError.alreadyReading` at its first
    /// element: events are never split between two readers. The sequence itself holds nothing,
    /// so keeping it in a property keeps no reader. Read in one task and fan out from there if
    /// several parts of the app need events.
    public var events: SocketEvents {
        SocketEvents(reader: reader) { $0 }
    }

    /// The messages of `events` alone, with their resume position, for an app that sends with
    /// `send` and reads messages only: state changes and acks are passed over (`waitOpen`,
    /// `waitAcked` and `events` give them), but what the app must not miss is thrown:
    /// `SteadyWSError.sendFailed(id:reason:message:)` for a message that will not be stored
    /// (expired, dropped, rejected, cancelled; `sendAndWait` throws it too), and
    /// `.storeRecovered` for a damaged store rebuilt at start. The error ends the loop and takes
    /// nothing else: iterate `messages` again to read on. It reads `events` (the same one-reader
    /// rule).
    ///
    /// ```swift
    /// while true {
    ///     do {
    ///         for try await message in socket.messages { show(message) }
    ///         break                                         // closed
    ///     } catch let SteadyWSError.sendFailed(id, reason, _) {
    ///         markUnsent(id, reason)                        // then read on
    ///     }
    /// }
    /// ```
    public var messages: SocketMessages {
        SocketMessages(reader: reader, pick: ReceivedMessage.pick)
    }
}

// MARK: - Reading events

/// `SteadySocket.events`: every event, in order, to one reader at a time.
public typealias SocketEvents = SocketReading<SocketEvent>
/// `SteadySocket.messages`: the messages of `events`, with the failures an app must not miss
/// thrown.
public typealias SocketMessages = SocketReading<ReceivedMessage>

/// What a loop over `events` or `messages` reads: the socket's events, each either yielded as an
/// element, passed over, or thrown (`pick` decides). Holds nothing itself: each iterator is one
/// reader of the socket.
public struct SocketReading<Element: Sendable>: AsyncSequence, Sendable {
    let reader: EventReader
    /// The element for an event; nil to pass over it; throws to end the loop with an error.
    let pick: @Sendable (SocketEvent) throws -> Element?

    public func makeAsyncIterator() -> Iterator {
        Iterator(claim: EventClaim(reader: reader), pick: pick)
    }

    /// One reader of the socket, from its first element until it ends or is released.
    public struct Iterator: AsyncIteratorProtocol, Sendable {
        let claim: EventClaim
        let pick: @Sendable (SocketEvent) throws -> Element?

        /// The next element; nil once the socket is closed and drained, or the task was cancelled.
        /// - Throws: `SteadyWSError.alreadyReading` while another loop reads this socket; with
        ///   `messages`, `.sendFailed(id:reason:message:)` and `.storeRecovered`.
        public func next() async throws -> Element? {
            while let event = try await claim.next() {
                if let element = try pick(event) {
                    return element
                }
            }
            return nil
        }
    }
}

extension ReceivedMessage {
    /// `messages`' choice: a message is yielded, the failures an app must not miss are thrown,
    /// the rest is passed over.
    static func pick(_ event: SocketEvent) throws -> ReceivedMessage? {
        switch event {
        case .message:
            return ReceivedMessage(event)
        case let .sendFailed(id, reason, message, _):
            throw SteadyWSError.sendFailed(id: id, reason: reason, message: message)
        case let .storeRecovered(problem, recoveredMessages, movedTo):
            throw SteadyWSError.storeRecovered(
                problem: problem, recoveredMessages: recoveredMessages, movedTo: movedTo
            )
        case .stateChanged, .acked, .malformedFrame, .serverError:
            return nil
        }
    }
}

/// The socket's side of `events`: at most one native `nextEvents` call in flight, started only
/// when a reader waits and the last batch is used up; the rest of a batch stays here, in order,
/// for the reader's next request (or the next reader's).
final class EventReader: @unchecked Sendable {
    private let native: NativeSocket
    private let batchSize: UInt32

    // Guarded by `lock`.
    private let lock = NSLock()
    private var batch: [SocketEvent] = []
    private var head = 0
    private var pulling = false
    private var ended = false
    private var reader: ObjectIdentifier?
    private var waiting: (claim: ObjectIdentifier, continuation: CheckedContinuation<SocketEvent?, Error>)?

    init(native: NativeSocket, batchSize: UInt32) {
        self.native = native
        self.batchSize = batchSize
    }

    /// The next event for `claim`, nil to end its loop, or `alreadyReading`; `continuation` is
    /// resumed exactly once, now or when the native pull returns.
    func request(_ claim: EventClaim, _ continuation: CheckedContinuation<SocketEvent?, Error>) {
        let key = ObjectIdentifier(claim)
        var answer: Result<SocketEvent?, Error>?
        var startPull = false
        lock.lock()
        if claim.finished {
            answer = .success(nil)
        } else if let reader, reader != key {
            answer = .failure(SteadyWSError.alreadyReading)
        } else if waiting != nil {
            // One iterator asked from two tasks at once.
            answer = .failure(SteadyWSError.alreadyReading)
        } else if head < batch.count {
            reader = key
            answer = .success(takeLocked())
        } else if ended {
            claim.finished = true
            reader = nil
            answer = .success(nil)
        } else {
            reader = key
            waiting = (key, continuation)
            if !pulling {
                pulling = true
                startPull = true
            }
        }
        lock.unlock()
        if let answer {
            continuation.resume(with: answer)
        }
        if startPull {
            pull()
        }
    }

    /// The reader's task was cancelled: end its loop now. A native pull in flight goes on; its
    /// events stay here for the next reader.
    func cancel(_ claim: EventClaim) {
        let key = ObjectIdentifier(claim)
        var continuation: CheckedContinuation<SocketEvent?, Error>?
        lock.lock()
        claim.finished = true
        if let waiting, waiting.claim == key {
            continuation = waiting.continuation
            self.waiting = nil
        }
        if reader == key {
            reader = nil
        }
        lock.unlock()
        continuation?.resume(returning: nil)
    }

    /// The iterator of `key` was released: it is no longer the reader.
    func release(_ key: ObjectIdentifier) {
        lock.lock()
        if reader == key {
            reader = nil
        }
        lock.unlock()
    }

    private func pull() {
        let native = self.native
        let max = batchSize
        Task.detached { [self] in
            let events = await native.nextEvents(max: max)
            self.deliver(events)
        }
    }

    private func deliver(_ events: [SocketEvent]) {
        var continuation: CheckedContinuation<SocketEvent?, Error>?
        var answer: SocketEvent?
        lock.lock()
        pulling = false
        if events.isEmpty {
            // Closed and drained.
            ended = true
        } else {
            if head == batch.count {
                batch.removeAll(keepingCapacity: true)
                head = 0
            }
            batch.append(contentsOf: events)
        }
        if let waiting {
            self.waiting = nil
            continuation = waiting.continuation
            if head < batch.count {
                answer = takeLocked()
            } else if reader == waiting.claim {
                reader = nil
            }
        }
        lock.unlock()
        continuation?.resume(returning: answer)
    }

    private func takeLocked() -> SocketEvent {
        let event = batch[head]
        head += 1
        if head == batch.count {
            batch.removeAll(keepingCapacity: true)
            head = 0
        }
        return event
    }
}

/// One iterator's hold on the reader; released with the iterator, so a loop left with `break`
/// lets the next one read at once.
final class EventClaim: @unchecked Sendable {
    let reader: EventReader
    /// Its loop ended (cancelled, or the stream ended): later requests answer nil. Guarded by the
    /// reader's lock.
    var finished = false

    init(reader: EventReader) {
        self.reader = reader
    }

    deinit {
        reader.release(ObjectIdentifier(self))
    }

    func next() async throws -> SocketEvent? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<SocketEvent?, Error>) in
                reader.request(self, continuation)
            }
        } onCancel: {
            reader.cancel(self)
        }
    }
}

// MARK: - Closing

/// Whether `close()` was called, and what runs once then: the app adapters (`AppAttachment`)
/// detach themselves. The hooks run outside the lock, on the thread that called `close()` (or
/// released the socket).
final class Closing: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var closed = false
    private var hooks: [UInt64: @Sendable () -> Void] = [:]
    private var next: UInt64 = 0

    var isClosed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return closed
    }

    /// Register `hook`; its key for `remove`, or nil (nothing registered) once closed.
    func add(_ hook: @escaping @Sendable () -> Void) -> UInt64? {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return nil }
        next += 1
        hooks[next] = hook
        return next
    }

    func remove(_ key: UInt64) {
        lock.lock()
        hooks.removeValue(forKey: key)
        lock.unlock()
    }

    /// Mark closed; the hooks to run, or nil when it was closed already.
    func close() -> [@Sendable () -> Void]? {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return nil }
        closed = true
        let running = Array(hooks.values)
        hooks.removeAll()
        return running
    }
}

// MARK: - Waits

/// Runs the native waits of one socket so that cancelling the waiting task ends the native
/// future too (UniFFI's Swift async calls cannot be cancelled by themselves, so each wait gets a
/// `WaitCancellation`), and counts them: when a cancelled wait returns, nothing of it is left.
/// `close()` needs nothing here: the native socket answers every pending wait `closed`.
final class NativeWaits: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var running = 0

    /// Native waits in progress (for the tests of cancellation).
    var inProgress: Int {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    /// `wait`'s answer, and whether the calling task was cancelled meanwhile (then the native
    /// wait answered `timedOut` at once, unless its real answer came first).
    func run<T: Sendable>(
        _ wait: @Sendable (WaitCancellation) async -> T
    ) async -> (T, cancelled: Bool) {
        let cancellation = WaitCancellation()
        count(+1)
        defer { count(-1) }
        let answer = await withTaskCancellationHandler {
            await wait(cancellation)
        } onCancel: {
            cancellation.cancel()
        }
        return (answer, cancellation.isCancelled())
    }

    private func count(_ change: Int) {
        lock.lock()
        running += change
        lock.unlock()
    }
}

// MARK: - Time

/// Whole milliseconds, clamped to what the Rust side accepts (negative and NaN: 0; infinity:
/// 10^15 ms, some 30 000 years).
func milliseconds(_ seconds: TimeInterval) -> UInt64 {
    guard seconds > 0 else { return 0 }
    return UInt64(min(seconds * 1_000, 1e15).rounded())
}
