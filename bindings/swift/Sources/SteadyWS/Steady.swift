// The Swift-shaped layer over the generated bindings (Generated/SteadyWS.swift): an AsyncStream of
// events, an async `send` that returns once the server stored the message, waits with time
// limits, and readable errors. Written by hand; the generated file is build output.

import Foundation

// MARK: - Sendable

// Records and enums of the bindings are plain values (strings, numbers, bytes, options of those),
// so they are safe to pass between tasks. The generated file declares that for Swift 6 compilers
// only (`#if compiler(>=6)`); this covers 5.10.
#if !compiler(>=6)
extension SocketEvent: @unchecked Sendable {}
extension SocketState: @unchecked Sendable {}
extension MessageData: @unchecked Sendable {}
extension ConnectionProblem: @unchecked Sendable {}
extension ConnectionErrorKind: @unchecked Sendable {}
extension SendFailureKind: @unchecked Sendable {}
extension SocketStats: @unchecked Sendable {}
extension SocketOptions: @unchecked Sendable {}
extension AppLifecycle: @unchecked Sendable {}
extension NetworkStatus: @unchecked Sendable {}
extension HeartbeatKind: @unchecked Sendable {}
extension BackgroundMode: @unchecked Sendable {}
#endif

// MARK: - Errors

// `SteadyError` is a flat error: every case carries only `message`, the Rust error's text.
extension SteadyError: CustomStringConvertible {
    /// What is wrong and what to do, as the Rust library words it.
    public var message: String {
        switch self {
        case let .InvalidUrl(message: message),
             let .InvalidConfig(message: message),
             let .NotJson(message: message),
             let .WrongMode(message: message),
             let .MessageTooLarge(message: message),
             let .OutboxFull(message: message):
            return message
        }
    }

    /// The message alone, so `print(error)` and `error.localizedDescription` (the generated
    /// `errorDescription` is `String(reflecting:)`, which uses this) read as a sentence instead
    /// of `SteadyError.InvalidUrl(message: …)`.
    public var description: String { message }
}

/// A message the server will not acknowledge: thrown by `SteadyConnection.send`.
public struct SendFailure: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    /// The id `send` gave the message.
    public let id: String
    /// `.expired` (its time-to-live passed), `.dropped` (evicted from a full outbox) or
    /// `.rejected` (the server refused it).
    public let reason: SendFailureKind
    /// Details; for `.rejected`, the server's code and explanation.
    public let message: String

    public init(id: String, reason: SendFailureKind, message: String) {
        self.id = id
        self.reason = reason
        self.message = message
    }

    public var description: String { "message \(id) was not stored (\(reason)): \(message)" }
    public var errorDescription: String? { description }
}

/// Why a wait on a `SteadyConnection` ended without its result.
public enum SteadyWaitError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    /// Nothing matching arrived within the time limit.
    case timedOut(waitingFor: String, seconds: TimeInterval)
    /// The socket gave up (`SocketState.failed`); `connect()` starts over.
    case failed(reason: String, retryable: Bool)
    /// The connection was closed (`close()` or released) while waiting.
    case closed

    public var description: String {
        switch self {
        case let .timedOut(what, seconds):
            return "timed out after \(seconds) s waiting for \(what)"
        case let .failed(reason, _):
            return "the socket gave up: \(reason)"
        case .closed:
            return "the connection was closed while waiting"
        }
    }

    public var errorDescription: String? { description }
}

// MARK: - Conveniences on the generated types

extension SocketState {
    /// True when connected.
    public var isOpen: Bool { self == .open }
}

extension SocketEvent {
    /// The new state, for a `stateChanged` event.
    public var stateChange: SocketState? {
        if case let .stateChanged(state) = self { return state }
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

// MARK: - SteadyConnection

/// A `SteadySocket` with a Swift concurrency API.
///
/// ```swift
/// let connection = try SteadyConnection(url: "wss://chat.example.com/ws")
/// let events = connection.events()      // subscribe first, then connect
/// connection.connect()
/// let id = try await connection.send(#"{"text":"hello"}"#)   // returns once the server stored it
/// for await event in events {
///     switch event {
///     case let .message(_, seq, _, .json(json)): print(seq ?? 0, json)
///     case let .stateChanged(state): print("now", state)
///     case let .connectionLost(problem): print(problem.message)   // says what to do
///     default: break
///     }
/// }
/// ```
///
/// The connection owns the socket's event delivery (it installs itself as the socket's listener):
/// read events through `events()`, not through `socket.nextEvent()`. Every method returns at once
/// except the `async` ones; all of them may be called from any thread or task.
public final class SteadyConnection: Sendable {
    /// The underlying socket, for what this layer does not wrap.
    public let socket: SteadySocket
    private let hub: EventHub

    /// Validate `options` and create the connection (idle until `connect()`).
    ///
    /// Events that arrive while no `events()` stream is being read are kept, up to
    /// `backlogLimit` (oldest dropped first), and handed to the next `events()` stream.
    /// - Throws: `SteadyError.InvalidUrl` or `.InvalidConfig`, with a message that says what to fix.
    public init(options: SocketOptions, backlogLimit: Int = 10_000) throws {
        socket = try SteadySocket(options: options)
        hub = EventHub(backlogLimit: backlogLimit)
        socket.setListener(listener: hub)
    }

    /// A connection to `url` with the default options, adjusted by `configure`.
    public convenience init(url: String, configure: (inout SocketOptions) -> Void = { _ in }) throws {
        var options = SocketOptions(url: url)
        configure(&options)
        try self.init(options: options)
    }

    deinit {
        close()
    }

    // MARK: Lifecycle

    /// Start connecting, and keep reconnecting.
    public func connect() {
        socket.connect()
    }

    /// Close gracefully and stop reconnecting; queued messages wait for the next `connect()`.
    /// Event streams stay open (the state changes to `closing`, then `closed`).
    public func disconnect() {
        socket.disconnect()
    }

    /// Stop for good: closes the connection (with a close frame when open), stops reconnecting
    /// and shuts the socket down (`SteadySocket.shutdown()`: its own event stream ends, so a
    /// pending `socket.nextEvent()` returns nil), ends every `events()` and `states()` stream and
    /// fails pending `send`s and waits with `SteadyWaitError.closed`. A closed connection does not
    /// connect again: make a new one. `state` keeps its last value (`closing` when it was open).
    /// Also done when the connection is released; calling it again does nothing more.
    public func close() {
        socket.disconnect()
        socket.shutdown()
        socket.setListener(listener: nil)
        hub.finish()
    }

    /// Tell the socket whether the app is visible (see also `observeAppLifecycle()` on iOS).
    public func setAppState(_ state: AppLifecycle) {
        socket.setAppState(state: state)
    }

    /// Tell the socket what reachability reports (see also `monitorNetwork()` on Apple platforms).
    public func setNetwork(_ status: NetworkStatus) {
        socket.setNetwork(status: status)
    }

    /// The current state.
    public var state: SocketState { socket.state() }

    /// Counters.
    public var stats: SocketStats { socket.stats() }

    // MARK: Sending

    /// Queue a JSON message and wait until the server acknowledged (stored) it; returns its id.
    ///
    /// Never fails because the network is down: the message waits in the outbox and is resent
    /// after a reconnect, so this may wait as long as the outage. Give a `ttl` to bound the wait;
    /// cancelling the task stops the wait but not the delivery.
    /// - Throws: `SteadyError` when the message is refused at once (not JSON, too large, outbox
    ///   full); `SendFailure` when it will not be stored (`reason` `.expired`, `.dropped` or
    ///   `.rejected`); `CancellationError`; `SteadyWaitError.closed`.
    @discardableResult
    public func send(_ json: String, ttl: TimeInterval? = nil) async throws -> String {
        try await hub.sendAndWait { try self.enqueue(json, ttl: ttl) }
    }

    /// Queue a JSON message and return its id at once; an `acked` event follows once the server
    /// stored it (or `sendFailed`).
    /// - Throws: `SteadyError` (not JSON, too large, outbox full).
    @discardableResult
    public func enqueue(_ json: String, ttl: TimeInterval? = nil) throws -> String {
        if let ttl {
            return try socket.sendWithTtl(json: json, ttlMs: milliseconds(ttl))
        }
        return try socket.send(json: json)
    }

    /// Send a text frame unchanged (raw mode: no ids, acks or resend).
    @discardableResult
    public func sendText(_ text: String) throws -> String {
        try socket.sendText(text: text)
    }

    /// Send a binary frame unchanged (raw mode: no ids, acks or resend).
    @discardableResult
    public func sendBinary(_ bytes: Data) throws -> String {
        try socket.sendBinary(bytes: bytes)
    }

    // MARK: Events

    /// Every event from now on, in order, until the connection is closed or released.
    ///
    /// Each call is a new subscription and every subscription sees every event. The first one
    /// also receives what arrived while nobody was subscribed, so nothing is missed between
    /// `init` and the first `for await`.
    public func events() -> AsyncStream<SocketEvent> {
        hub.subscribe(takesBacklog: true)
    }

    /// The current state, then every change, until the connection is closed or released.
    /// The first element may repeat a change that was already on its way.
    public func states() -> AsyncStream<SocketState> {
        let source = hub.subscribe(takesBacklog: false)
        let current = socket.state()
        return AsyncStream(SocketState.self, bufferingPolicy: .unbounded) { continuation in
            continuation.yield(current)
            let pump = Task {
                for await event in source {
                    if let state = event.stateChange {
                        continuation.yield(state)
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in pump.cancel() }
        }
    }

    /// Wait until the state satisfies `predicate` (the current state counts); returns that state.
    /// - Throws: `SteadyWaitError.timedOut`, `.closed`; `CancellationError`.
    @discardableResult
    public func waitForState(
        timeout: TimeInterval,
        _ description: String = "the state",
        where predicate: @escaping @Sendable (SocketState) -> Bool
    ) async throws -> SocketState {
        let states = self.states()
        return try await withThrowingTaskGroup(of: SocketState.self) { group in
            group.addTask {
                for await state in states where predicate(state) {
                    return state
                }
                try Task.checkCancellation()
                throw SteadyWaitError.closed
            }
            group.addTask {
                try await Task.sleep(nanoseconds: nanoseconds(timeout))
                throw SteadyWaitError.timedOut(waitingFor: description, seconds: timeout)
            }
            defer { group.cancelAll() }
            guard let state = try await group.next() else {
                throw SteadyWaitError.closed
            }
            return state
        }
    }

    /// Wait until the socket is open.
    /// - Throws: `SteadyWaitError.failed` when the socket gives up instead, `.timedOut`, `.closed`.
    public func waitUntilOpen(timeout: TimeInterval = 30) async throws {
        let state = try await waitForState(timeout: timeout, "Open") { state in
            switch state {
            case .open, .failed:
                return true
            default:
                return false
            }
        }
        if case let .failed(reason, retryable) = state {
            throw SteadyWaitError.failed(reason: reason, retryable: retryable)
        }
    }
}

// MARK: - Event hub

/// The socket's listener. Rust calls `onEvent` on one steadyws thread, in order; the hub hands
/// each event to every subscribed stream and resumes the `send` waiting for that id.
final class EventHub: SocketListener, @unchecked Sendable {
    // Everything below is guarded by `lock`. Continuations are resumed or finished outside it,
    // because finishing a stream runs its onTermination handler, which takes the lock.
    private let lock = NSLock()
    private var subscribers: [UInt64: Subscriber] = [:]
    private var nextKey: UInt64 = 0
    private var backlog: [SocketEvent] = []
    private let backlogLimit: Int
    private var ackWaiters: [String: CheckedContinuation<String, Error>] = [:]
    private var finished = false

    private struct Subscriber {
        let continuation: AsyncStream<SocketEvent>.Continuation
        let takesBacklog: Bool
    }

    /// One `send` in flight: its id once queued, or that it was cancelled first.
    final class Ticket: @unchecked Sendable {
        var id: String?
        var cancelled = false
    }

    init(backlogLimit: Int) {
        self.backlogLimit = max(0, backlogLimit)
    }

    // SocketListener
    func onEvent(event: SocketEvent) throws {
        var waiter: CheckedContinuation<String, Error>?
        var failure: SendFailure?
        lock.lock()
        switch event {
        case let .acked(id):
            waiter = ackWaiters.removeValue(forKey: id)
        case let .sendFailed(id, reason, message):
            waiter = ackWaiters.removeValue(forKey: id)
            failure = SendFailure(id: id, reason: reason, message: message)
        default:
            break
        }
        let targets = subscribers
        if !finished && !targets.values.contains(where: { $0.takesBacklog }) && backlogLimit > 0 {
            backlog.append(event)
            if backlog.count > backlogLimit {
                backlog.removeFirst(backlog.count - backlogLimit)
            }
        }
        lock.unlock()

        var gone: [UInt64] = []
        for (key, subscriber) in targets {
            if case .terminated = subscriber.continuation.yield(event) {
                gone.append(key)
            }
        }
        if !gone.isEmpty {
            lock.lock()
            for key in gone {
                subscribers.removeValue(forKey: key)
            }
            lock.unlock()
        }
        if let waiter {
            if let failure {
                waiter.resume(throwing: failure)
            } else if case let .acked(id) = event {
                waiter.resume(returning: id)
            }
        }
    }

    func subscribe(takesBacklog: Bool) -> AsyncStream<SocketEvent> {
        var made: AsyncStream<SocketEvent>.Continuation?
        let stream = AsyncStream(SocketEvent.self, bufferingPolicy: .unbounded) { continuation in
            made = continuation
        }
        guard let continuation = made else {
            return stream
        }
        lock.lock()
        if finished {
            lock.unlock()
            continuation.finish()
            return stream
        }
        let key = nextKey
        nextKey += 1
        subscribers[key] = Subscriber(continuation: continuation, takesBacklog: takesBacklog)
        if takesBacklog {
            // Under the lock, so the backlog comes before any later event.
            for event in backlog {
                continuation.yield(event)
            }
            backlog.removeAll()
        }
        lock.unlock()
        continuation.onTermination = { [weak self] _ in
            self?.unsubscribe(key)
        }
        return stream
    }

    private func unsubscribe(_ key: UInt64) {
        lock.lock()
        subscribers.removeValue(forKey: key)
        lock.unlock()
    }

    /// Queue with `enqueue` and wait for the ack of the id it returns. The lock is held from the
    /// enqueue to the registration, so the ack cannot slip past: `onEvent` takes the same lock.
    func sendAndWait(_ enqueue: () throws -> String) async throws -> String {
        let ticket = Ticket()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String, Error>) in
                lock.lock()
                if finished {
                    lock.unlock()
                    continuation.resume(throwing: SteadyWaitError.closed)
                    return
                }
                if ticket.cancelled {
                    lock.unlock()
                    continuation.resume(throwing: CancellationError())
                    return
                }
                do {
                    let id = try enqueue()
                    ticket.id = id
                    ackWaiters[id] = continuation
                    lock.unlock()
                } catch {
                    lock.unlock()
                    continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            self.cancel(ticket)
        }
    }

    private func cancel(_ ticket: Ticket) {
        lock.lock()
        ticket.cancelled = true
        var waiter: CheckedContinuation<String, Error>?
        if let id = ticket.id {
            waiter = ackWaiters.removeValue(forKey: id)
        }
        lock.unlock()
        waiter?.resume(throwing: CancellationError())
    }

    /// End every stream and fail every pending `send`; later subscriptions end at once.
    func finish() {
        lock.lock()
        finished = true
        let streams = subscribers.values.map { $0.continuation }
        subscribers.removeAll()
        let waiters = Array(ackWaiters.values)
        ackWaiters.removeAll()
        backlog.removeAll()
        lock.unlock()
        for stream in streams {
            stream.finish()
        }
        for waiter in waiters {
            waiter.resume(throwing: SteadyWaitError.closed)
        }
    }
}

// MARK: - Time

/// Whole milliseconds, clamped to what the Rust side accepts.
func milliseconds(_ seconds: TimeInterval) -> UInt64 {
    guard seconds.isFinite, seconds > 0 else { return 0 }
    return UInt64(min(seconds * 1_000, 1e15).rounded())
}

func nanoseconds(_ seconds: TimeInterval) -> UInt64 {
    guard seconds.isFinite, seconds > 0 else { return 0 }
    return UInt64(min(seconds * 1e9, 1e18).rounded())
}
