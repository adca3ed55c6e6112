// The Swift-shaped layer over the generated bindings (Generated/SteadyWS.swift): `Socket`, with
// `send` that returns the id at once, waits that observe acks and the state on the side
// (`sendAndWait`, `waitAcked`, `waitOpen`), `events` and `messages` pulling from the native queue
// on demand, `watch` following the state, and one error type, `SteadyWSError`. Every rule (one
// reader, the batch a take holds, what a failed wait is called, a closed socket) is the native
// socket's; this file only gives it Swift's shape. Written by hand; the generated file is build
// output.
//
// Concurrency: every type here is `Sendable`. Shared mutable state lives in final classes whose
// stored properties are guarded by an `NSLock`, taken only in synchronous methods and never held
// across an `await`.

import Foundation

// MARK: - Errors

/// Everything `Socket` throws: one error whose `kind` says what happened, the same kind as in
/// Python and Kotlin (`ErrorKind`, from the native socket), and whose `message` says what to do.
///
/// ```swift
/// do {
///     try await socket.sendAndWait(json, timeout: 10)
/// } catch let error as SteadyWSError where error.kind == .timedOut {
///     // still queued: it is sent once the connection is back
/// }
/// ```
///
/// `print(error)`, `error.localizedDescription` and `"\(error)"` give the message.
public struct SteadyWSError: Error, Sendable, Hashable, LocalizedError, CustomStringConvertible {
    /// What happened (see `ErrorKind` for when each is thrown).
    public let kind: ErrorKind
    /// What is wrong and what to do.
    public let message: String
    /// The message concerned: set by the waits (`sendAndWait`, `waitAcked`) and by `messages`
    /// for a send failure.
    public let messageId: String?
    /// Why the message will not be acknowledged, for `.sendFailed`.
    public let sendFailure: SendFailureKind?

    public init(kind: ErrorKind, message: String, messageId: String? = nil, sendFailure: SendFailureKind? = nil) {
        self.kind = kind
        self.message = message
        self.messageId = messageId
        self.sendFailure = sendFailure
    }

    /// The native socket's error, one to one.
    init(_ error: NativeError) {
        switch error {
        case let .Failure(kind, detail, messageId, sendFailure):
            self.init(kind: kind, message: detail, messageId: messageId, sendFailure: sendFailure)
        }
    }

    public var description: String { message }
    public var errorDescription: String? { message }
}

/// Run a call of the generated API, throwing its `NativeError` as `SteadyWSError`.
func native<T>(_ call: () throws -> T) throws -> T {
    do {
        return try call()
    } catch let error as NativeError {
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

extension SocketConfig {
    /// A configuration for `url` (every setting left out takes the native default), adjusted by
    /// `configure`: `SocketConfig("wss://…") { $0.background = .disconnectAfterGrace }`.
    public init(_ url: String, configure: (inout SocketConfig) -> Void) {
        self.init(url: url)
        configure(&self)
    }
}

/// A message from the server, as `Socket.messages` yields it.
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
    /// transaction, and pass it back as `SocketConfig.resumeLastSeq` / `resumeLastTs`.
    public let cursor: ResumeCursor
    /// True only for a message this app was handed before a crash (the process was killed while
    /// the message was in hand, before it asked for the next one), so it may have processed it
    /// already: make its handling idempotent, or check it against what was stored. Every other
    /// message is delivered once across crashes. Needs a store (`SocketConfig.store`); without
    /// one the flag is always false.
    public let redelivered: Bool

    /// The message of a `.message` event; nil for any other event.
    public init?(_ event: SocketEvent) {
        guard case let .message(id, seq, ts, data, cursor, redelivered) = event else {
            return nil
        }
        self.id = id
        self.seq = seq
        self.ts = ts
        self.data = data
        self.cursor = cursor
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
/// let socket = try Socket(url: "wss://chat.example.com/ws") { config in
///     config.store = StoreConfig(directory: support)
/// }
/// ```
public struct StoreConfig: Sendable, Hashable {
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

    public init(directory: URL, name: String = StoreConfig.defaultName, syncEveryCommit: Bool = false) {
        self.directory = directory
        self.name = name
        self.syncEveryCommit = syncEveryCommit
    }

    /// The store file, `<directory>/<name>.steadyws`.
    public var file: URL {
        directory.appendingPathComponent("\(name).steadyws")
    }
}

extension SocketConfig {
    /// The durable store (nil: memory only, the default). Sets `storeDirectory`, `storeName` and
    /// `storeSyncEveryCommit`. Needs envelope mode: with `rawMode` the socket is refused (kind
    /// `.invalidOptions`).
    public var store: StoreConfig? {
        get {
            guard let storeDirectory else { return nil }
            return StoreConfig(
                directory: URL(fileURLWithPath: storeDirectory, isDirectory: true),
                name: storeName,
                syncEveryCommit: storeSyncEveryCommit
            )
        }
        set {
            storeDirectory = newValue?.directory.path
            storeName = newValue?.name ?? StoreConfig.defaultName
            storeSyncEveryCommit = newValue?.syncEveryCommit ?? false
        }
    }
}

// MARK: - Socket

/// A WebSocket that stays connected, resends what the server has not acknowledged, drops
/// duplicates and resumes where it left off: the Swift face of the native `NativeSocket`.
///
/// ```swift
/// let socket = try Socket(url: "wss://chat.example.com/ws")
/// socket.connect()
/// let id = try socket.send(#"{"text":"hello"}"#)        // queued; returns the id at once
/// try await socket.waitAcked(id, timeout: 10)             // optional: until the server stored it
/// for try await event in socket.events {                  // the one reader of this socket
///     switch event {
///     case let .message(_, seq, _, .json(json), cursor, _): print(seq ?? 0, json, cursor)
///     case let .stateChanged(state, cause): print("now \(state)", cause.problem?.message ?? "")
///     default: break
///     }
/// }
/// ```
///
/// **Threads and actors.** `Socket` is `Sendable`: call any method from any thread, task or
/// actor, the main actor included. The synchronous methods never block (they hand the command to
/// the native socket and return); the `async` ones suspend without blocking a thread. The network
/// work runs on the Rust runtime's two shared threads; no thread per socket.
///
/// **One reader.** The native queue is the only buffer, bounded by
/// `SocketConfig.inboxMaxEvents` / `inboxMaxBytes`; while it is full the socket stops reading
/// (TCP pushes back on the server) and nothing is dropped. `events` (or `messages`) pulls from it
/// only when its reader asks for the next element, and the native socket refuses a second
/// reader while one is taking events (kind `.alreadyReading`).
///
/// **Waiting never eats events.** `sendAndWait`, `waitAcked`, `waitOpen` and `watch` observe on
/// the side; the `.acked` and `.stateChanged` events still come through `events`.
///
/// **Closing.** `close()` (also done when the socket is released) ends it for good: the state is
/// `.closed`, every pending wait throws kind `.closed` at once, `events` delivers what is left
/// and ends, and later sends throw `.closed`.
///
/// **Durable outbox.** With `SocketConfig.store`, the outbox, the resume cursor, the dedup
/// window and the client id live in an SQLite file and survive the process being killed: `send`
/// returns once the message is on disk, the next socket on the same store sends what was left
/// first (`pending()` lists it at once), and reading resumes after the last message the app took.
/// The native socket then hands out one event per take, so at most the message in hand at a
/// crash is delivered again, flagged `redelivered`.
public final class Socket: Sendable {
    /// The generated object, for what this layer does not wrap. Do not take its events while
    /// `events` is used: the native socket refuses a second reader.
    public let native: NativeSocket
    /// The configuration the socket was made with (the app adapter reads its background policy
    /// here).
    public let config: SocketConfig
    /// Events a loop took from the native queue and left unread (`break` mid-batch), for the
    /// next loop, in order.
    let unread = Unread()
    /// The native waits in progress, each ended when its task is cancelled.
    let waits = NativeWaits()

    /// Validate `config` and create the socket (idle until `connect()`). With a store, the store
    /// is opened (created when missing) and what it kept is restored: `pending()` lists the
    /// messages left unacknowledged at once, and they are sent first once connected.
    /// - Throws: `SteadyWSError` of kind `.invalidUrl` or `.invalidOptions`, with a message that
    ///   says what to fix; with a store, `.storeInUse`, `.storeNewerFormat` or `.storeFailed`.
    public init(config: SocketConfig) throws {
        native = try SteadyWS.native { try NativeSocket(config: config) }
        self.config = config
    }

    /// A socket for `url` with the default configuration, adjusted by `configure`.
    public convenience init(url: String, configure: (inout SocketConfig) -> Void = { _ in }) throws {
        var config = SocketConfig(url: url)
        configure(&config)
        try self.init(config: config)
    }

    deinit {
        close()
    }

    // MARK: Commands

    /// Start connecting, and keep reconnecting. Does nothing once closed.
    public func connect() {
        native.connect()
    }

    /// Close the connection gracefully and stop reconnecting; queued messages wait for the next
    /// `connect()`. The socket stays usable (`close()` is the end).
    public func disconnect() {
        native.disconnect()
    }

    /// Close for good: the connection is closed, reconnecting stops, the state becomes `.closed`
    /// (a `stateChanged` event with cause `.app`), every pending `sendAndWait`, `waitAcked` and
    /// `waitOpen` throws kind `.closed` at once, and `events` delivers what is left, then ends.
    /// Later sends throw `.closed`; commands do nothing. Also done when the socket is released;
    /// calling it again does nothing.
    public func close() {
        native.close()
    }

    /// Tell the socket whether the app is visible (`attachToApp()` does it on iOS). With a
    /// store, `.background` also closes the store file between writes, so the suspended app holds
    /// no file lock; `.foreground` keeps it open again.
    public func setAppState(_ state: AppState) {
        native.setAppState(state: state)
    }

    /// Tell the socket what reachability reports (`attachToApp()` and `monitorNetwork()` do it on
    /// Apple platforms). A route without an interface name keeps the name known before.
    public func setNetwork(_ status: NetworkStatus) {
        native.setNetwork(status: status)
    }

    /// The current state.
    public var state: SocketState { native.state() }

    /// Counters. `messagesIn` counts the messages the app took from `events`, and
    /// `lastSeq` / `lastTs` are the position of the last one taken.
    public var stats: SocketStats { native.stats() }

    /// The state and the outbox length, now and then at every change, until the socket is closed
    /// (the last element has state `.closed`) or the loop's task is cancelled. Takes nothing from
    /// `events`; any number of loops may watch.
    ///
    /// ```swift
    /// for await status in socket.watch() where status.outboxLen == 0 { break }
    /// ```
    public func watch() -> SocketWatch {
        SocketWatch(watch: native.watch())
    }

    // MARK: Sending

    /// Queue a JSON message and return its id at once, before the server acknowledged it; an
    /// `.acked` event follows once the server stored it, or `.sendFailed` (with the payload).
    ///
    /// Never fails because the network is down: the message waits in the outbox (bounded by
    /// `outboxMaxMessages` / `outboxMaxBytes`) and is resent after a reconnect until acknowledged.
    /// With a `ttl` (seconds), it is given up after that long (`.sendFailed`, reason `.expired`).
    ///
    /// With a store, it returns once the message is written to the store file, so a message
    /// whose id was returned survives the process being killed.
    /// - Throws: `SteadyWSError` of kind `.notJson`, `.messageTooLarge`, `.wrongMode` (raw mode),
    ///   `.outboxFull`, `.storeFailed` (nothing queued), `.closed`.
    @discardableResult
    public func send(_ json: String, ttl: TimeInterval? = nil) throws -> String {
        try SteadyWS.native { try native.send(json: json, ttlMs: ttl.map(milliseconds)) }
    }

    /// Queue a JSON message and wait until the server acknowledged (stored) it; returns its id.
    /// One native call: the message is queued (with its `ttl`, seconds), then its ack awaited on
    /// the side (the `.acked` event still comes through `events`). Without a `timeout` it may
    /// wait as long as the outage lasts. Cancelling the task ends the wait, not the delivery: it
    /// throws kind `.cancelled` with the `messageId` to `waitAcked` or `cancel` later.
    /// - Throws: `SteadyWSError` — when it cannot be queued, as `send`; then `.sendFailed`
    ///   (`sendFailure` says why: `.expired` when the `ttl` ran out), `.timedOut`, `.cancelled`,
    ///   `.closed`, each with the `messageId`.
    @discardableResult
    public func sendAndWait(
        _ json: String,
        ttl: TimeInterval? = nil,
        timeout: TimeInterval? = nil
    ) async throws -> String {
        let native = self.native
        return try await waits.run { cancellation in
            try await native.sendAndWait(
                json: json, ttlMs: ttl.map(milliseconds), timeoutMs: timeout.map(milliseconds),
                cancellation: cancellation
            )
        }
    }

    /// Wait until the server acknowledged the message `id` (from `send`, or listed by `pending()`).
    /// Answers at once when its outcome is already known. Observes on the side: the `.acked` event
    /// still comes through `events`. Cancelling the task ends the wait, not the delivery.
    /// - Throws: `SteadyWSError` of kind `.sendFailed`, `.timedOut`, `.cancelled`, `.closed` or
    ///   `.unknownMessage`, with the `messageId`.
    public func waitAcked(_ id: String, timeout: TimeInterval? = nil) async throws {
        let native = self.native
        try await waits.run { cancellation in
            try await native.waitAcked(id: id, timeoutMs: timeout.map(milliseconds), cancellation: cancellation)
        }
    }

    /// Wait until the socket is open (at once when it is). Observes the state on the side: the
    /// `.stateChanged` events still come through `events`. Cancelling the task ends the wait; the
    /// socket goes on connecting.
    /// - Throws: `SteadyWSError` of kind `.connectionFailed` (the socket gave up; its `state`
    ///   says why and whether retrying may help), `.timedOut`, `.cancelled`, `.closed`.
    public func waitOpen(timeout: TimeInterval? = nil) async throws {
        let native = self.native
        try await waits.run { cancellation in
            try await native.waitOpen(timeoutMs: timeout.map(milliseconds), cancellation: cancellation)
        }
    }

    // MARK: Outbox

    /// The messages sent and not acknowledged yet, oldest first (`id`, `json`, `createdAt`):
    /// they are (re)sent in this order. With a store this includes what an earlier run of the app
    /// left unacknowledged: listed at once, before `connect()`, with the ids its `send` returned,
    /// and sent first.
    public func pending() -> [PendingMessage] {
        native.pending()
    }

    /// Stop sending the message `id`: true when it was pending, false when it is unknown or
    /// already settled (acknowledged, failed, cancelled). When true, a `.sendFailed` event with
    /// reason `.cancelled` follows and a `sendAndWait` / `waitAcked` on it throws kind
    /// `.sendFailed` with `sendFailure` `.cancelled`. With a store, the removal is on disk when
    /// this returns. A copy already written to the connection may still have reached the server:
    /// cancel is "do not send it again", not "take it back".
    /// - Throws: `SteadyWSError` of kind `.storeFailed` when the store could not be written,
    ///   `.closed`.
    @discardableResult
    public func cancel(_ id: String) throws -> Bool {
        try SteadyWS.native { try native.cancel(id: id) }
    }

    /// Send a text frame unchanged (raw mode: no ids, acks or resend).
    /// - Throws: `SteadyWSError` of kind `.wrongMode` in envelope mode, `.outboxFull`, `.closed`.
    @discardableResult
    public func sendText(_ text: String) throws -> String {
        try SteadyWS.native { try native.sendText(text: text) }
    }

    /// Send a binary frame unchanged (raw mode: no ids, acks or resend).
    /// - Throws: `SteadyWSError` of kind `.wrongMode` in envelope mode, `.outboxFull`, `.closed`.
    @discardableResult
    public func sendBinary(_ bytes: Data) throws -> String {
        try SteadyWS.native { try native.sendBinary(bytes: bytes) }
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
    /// A loop takes a batch from the native queue only when it asks for the next element and the
    /// previous batch is used up; taking a message commits it (`stats.messagesIn`, the resume
    /// cursor; with a store, durably, once the loop asks for the next one). Events of a batch
    /// left unread when a loop stops (`break`) go to the next loop, in order.
    ///
    /// **One reader at a time.** While a loop waits for events, another loop over `events` or
    /// `messages` throws kind `.alreadyReading`: events are never split between two readers
    /// waiting at once. Cancelling the loop's task ends it quietly, like the end of the stream,
    /// and frees the socket for the next reader at once. Read in one task and fan out from there
    /// if several parts of the app need events.
    public var events: SocketEvents {
        SocketEvents(source: EventSource(self)) { $0 }
    }

    /// The messages of `events` alone, with their resume cursor, for an app that sends with
    /// `send` and reads messages only: state changes and acks are passed over (`waitOpen`,
    /// `waitAcked`, `watch` and `events` give them), but what the app must not miss is thrown:
    /// kind `.sendFailed` (with `messageId` and `sendFailure`) for a message that will not be
    /// stored, and `.storeRecovered` for a damaged store rebuilt at start. The error ends the
    /// loop and takes nothing else: iterate `messages` again to read on.
    ///
    /// ```swift
    /// while true {
    ///     do {
    ///         for try await message in socket.messages { show(message) }
    ///         break                                         // closed
    ///     } catch let error as SteadyWSError where error.kind == .sendFailed {
    ///         markUnsent(error.messageId)                   // then read on
    ///     }
    /// }
    /// ```
    public var messages: SocketMessages {
        SocketMessages(source: EventSource(self), pick: ReceivedMessage.pick)
    }
}

// MARK: - Reading events

/// `Socket.events`: every event, in order, to one reader at a time.
public typealias SocketEvents = SocketReading<SocketEvent>
/// `Socket.messages`: the messages of `events`, with the failures an app must not miss thrown.
public typealias SocketMessages = SocketReading<ReceivedMessage>

/// What a loop over `events` or `messages` reads: the socket's events, each either yielded as an
/// element, passed over, or thrown (`pick` decides). Holds nothing itself, and not the `Socket`:
/// a loop still running does not keep a released socket open.
public struct SocketReading<Element: Sendable>: AsyncSequence, Sendable {
    let source: EventSource
    /// The element for an event; nil to pass over it; throws to end the loop with an error.
    let pick: @Sendable (SocketEvent) throws -> Element?

    public func makeAsyncIterator() -> Iterator {
        Iterator(batch: Batch(source), pick: pick)
    }

    /// One loop over the socket's events.
    public struct Iterator: AsyncIteratorProtocol, Sendable {
        let batch: Batch
        let pick: @Sendable (SocketEvent) throws -> Element?

        /// The next element; nil once the socket is closed and drained, or the task was
        /// cancelled.
        /// - Throws: kind `.alreadyReading` while another loop takes this socket's events; with
        ///   `messages`, `.sendFailed` and `.storeRecovered`.
        public func next() async throws -> Element? {
            while let event = try await batch.next() {
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
            throw SteadyWSError(
                kind: .sendFailed, message: "message \(id) will not be acknowledged: \(message)",
                messageId: id, sendFailure: reason
            )
        case let .storeRecovered(problem, recoveredMessages, movedTo):
            throw SteadyWSError(
                kind: .storeRecovered,
                message: "the store was damaged (\(problem)) and rebuilt with the \(recoveredMessages) "
                    + "pending message(s) it still held; the damaged file was "
                    + (movedTo.map { "moved to \($0)" } ?? "not kept")
            )
        case .stateChanged, .acked, .malformedFrame, .serverError:
            return nil
        }
    }
}

/// What a loop reads from: the native socket, the events earlier loops left unread, and the
/// count of native waits.
struct EventSource: Sendable {
    let native: NativeSocket
    let unread: Unread
    let waits: NativeWaits

    init(_ socket: Socket) {
        native = socket.native
        unread = socket.unread
        waits = socket.waits
    }
}

/// One loop's batch: the events of its last native take, handed out one by one. What is left
/// when the loop ends goes back to the socket (`Unread`) for the next loop.
final class Batch: @unchecked Sendable {
    let source: EventSource
    // Guarded by `lock`.
    private let lock = NSLock()
    private var events: [SocketEvent] = []
    private var head = 0
    private var ended = false

    init(_ source: EventSource) {
        self.source = source
    }

    deinit {
        source.unread.keep(Array(events[head...]))
    }

    func next() async throws -> SocketEvent? {
        if let event = take() {
            return event
        }
        if isEnded || Task.isCancelled {
            return nil
        }
        let taken: [SocketEvent]
        do {
            let native = source.native
            taken = try await source.waits.run { cancellation in
                try await native.nextEvents(cancellation: cancellation)
            }
        } catch let error as SteadyWSError where error.kind == .cancelled {
            return nil
        }
        replace(with: taken)
        return take()
    }

    private func replace(with taken: [SocketEvent]) {
        lock.lock()
        events = taken
        head = 0
        ended = taken.isEmpty
        lock.unlock()
    }

    private var isEnded: Bool {
        lock.lock()
        defer { lock.unlock() }
        return ended
    }

    /// The next event of this batch, or of what an earlier loop left unread.
    private func take() -> SocketEvent? {
        lock.lock()
        defer { lock.unlock() }
        if head == events.count {
            events = source.unread.takeAll()
            head = 0
        }
        guard head < events.count else { return nil }
        head += 1
        return events[head - 1]
    }
}

/// Events a loop took from the native queue but did not read, for the next loop.
final class Unread: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var events: [SocketEvent] = []

    func keep(_ left: [SocketEvent]) {
        guard !left.isEmpty else { return }
        lock.lock()
        events.append(contentsOf: left)
        lock.unlock()
    }

    func takeAll() -> [SocketEvent] {
        lock.lock()
        defer { lock.unlock() }
        let all = events
        events.removeAll()
        return all
    }
}

// MARK: - Watching

/// `Socket.watch()`: the state and the outbox length, now and at every change (a watcher that
/// falls behind gets the latest), until the socket is closed or the task is cancelled.
public struct SocketWatch: AsyncSequence, Sendable {
    let watch: StatusWatch

    public func makeAsyncIterator() -> Iterator {
        Iterator(watch: watch)
    }

    public struct Iterator: AsyncIteratorProtocol, Sendable {
        let watch: StatusWatch

        /// The next status; nil after `.closed`, or once the task is cancelled.
        public func next() async -> SocketStatus? {
            let cancellation = WaitCancellation()
            return await withTaskCancellationHandler {
                await watch.changed(cancellation: cancellation)
            } onCancel: {
                cancellation.cancel()
            }
        }
    }
}

// MARK: - Waits

/// Runs the native waits of one socket so that cancelling the waiting task ends the native
/// future too (UniFFI's Swift async calls cannot be cancelled by themselves, so each wait gets a
/// `WaitCancellation`; a cancelled wait throws kind `.cancelled`), and counts them: when a
/// cancelled wait returns, nothing of it is left.
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

    func run<T: Sendable>(_ wait: @Sendable (WaitCancellation) async throws -> T) async throws -> T {
        let cancellation = WaitCancellation()
        count(+1)
        defer { count(-1) }
        do {
            return try await withTaskCancellationHandler {
                try await wait(cancellation)
            } onCancel: {
                cancellation.cancel()
            }
        } catch let error as NativeError {
            throw SteadyWSError(error)
        }
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
