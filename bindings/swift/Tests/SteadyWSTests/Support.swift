// Test support: the reference server as a child process, options with short timers, a recorder
// of a socket's events, reading a stream with a time limit, waits with time limits, peak memory,
// and a listener that throws.

import Foundation
import XCTest
import SteadyWS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a test helper gave up.
struct SupportError: Error, CustomStringConvertible {
    let description: String
}

/// The reference server (`steadyws-server`) as a separate process, so a test can SIGKILL it and
/// restart it on the same port with the same data directory.
///
/// The binary is `$STEADYWS_SERVER`, else `<repo>/target/debug/steadyws-server`
/// (`cargo build -p steadyws-server`).
final class ReferenceServer {
    /// The envelope endpoint it printed, `ws://127.0.0.1:PORT/ws`.
    let url: String
    /// The port it listens on.
    let port: Int
    private let process: Process
    private let arguments: [String]

    private init(process: Process, url: String, port: Int, arguments: [String]) {
        self.process = process
        self.url = url
        self.port = port
        self.arguments = arguments
    }

    static func binary() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["STEADYWS_SERVER"], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw SupportError(description: "STEADYWS_SERVER=\(path) is not an executable file")
            }
            return URL(fileURLWithPath: path)
        }
        // Tests/SteadyWSTests/Support.swift -> the repository root, five levels up.
        var repo = URL(fileURLWithPath: #filePath)
        for _ in 0..<5 {
            repo = repo.deletingLastPathComponent()
        }
        let candidate = repo.appendingPathComponent("target/debug/steadyws-server")
        guard FileManager.default.isExecutableFile(atPath: candidate.path) else {
            throw SupportError(description:
                "no reference server: set STEADYWS_SERVER, or run cargo build -p steadyws-server (looked for \(candidate.path))")
        }
        return candidate
    }

    /// Start the server on `listen` (port 0: any free port) with `arguments` such as
    /// `["--data-dir", dir]`, and wait (at most 20 s) for it to print its URL.
    static func start(listen: String = "127.0.0.1:0", arguments: [String] = []) throws -> ReferenceServer {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = ["--listen", listen] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["RUST_LOG"] = "warn"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()

        // Read stdout on a thread of its own until EOF (the process exits), so the server never
        // blocks on a full pipe; hand over the first `listening on URL` line.
        let found = DispatchSemaphore(value: 0)
        let line = LineBox()
        let reader = output.fileHandleForReading
        Thread.detachNewThread {
            var buffer = Data()
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty {
                    break
                }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let text = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                    buffer.removeSubrange(buffer.startIndex...newline)
                    let prefix = "listening on "
                    if text.hasPrefix(prefix), line.set(String(text.dropFirst(prefix.count))) {
                        found.signal()
                    }
                }
            }
        }
        guard found.wait(timeout: .now() + 20) == .success, let url = line.value else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw SupportError(description: "the reference server did not print its address within 20 s")
        }
        // ws://127.0.0.1:PORT/ws
        let authority = url.components(separatedBy: "://").last?.components(separatedBy: "/").first ?? ""
        guard let portText = authority.components(separatedBy: ":").last, let port = Int(portText) else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw SupportError(description: "unexpected server URL \(url)")
        }
        return ReferenceServer(process: process, url: url, port: port, arguments: arguments)
    }

    /// SIGKILL: no shutdown code runs, exactly like a crash.
    func sigkill() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
    }

    /// SIGSTOP: the server keeps its connections open and answers nothing, a dead server behind
    /// a live link, until `thaw()`.
    func freeze() {
        kill(process.processIdentifier, SIGSTOP)
    }

    /// SIGCONT after `freeze()`.
    func thaw() {
        kill(process.processIdentifier, SIGCONT)
    }

    /// A new process on the same port with the same arguments (after `sigkill()`).
    func restart() throws -> ReferenceServer {
        try ReferenceServer.start(listen: "127.0.0.1:\(port)", arguments: arguments)
    }

    deinit {
        sigkill()
    }
}

/// The first `listening on` value, handed from the reader thread to the test.
private final class LineBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: String?

    /// Keep `text` unless a value is already kept; true when kept.
    func set(_ text: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard stored == nil else { return false }
        stored = text
        return true
    }

    var value: String? {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
}

/// Options with short timers, like the Rust end-to-end suite's `quick`.
func quickOptions(_ url: String) -> SocketConfig {
    var options = SocketConfig(url: url)
    options.connectTimeoutMs = 3_000
    options.heartbeat = .jsonPing
    options.heartbeatIntervalMs = 500
    options.heartbeatTimeoutMs = 500
    options.probeTimeoutMs = 500
    options.backoffInitialMs = 100
    options.backoffMaxMs = 1_000
    return options
}

/// A fresh directory under the system's temporary directory.
func temporaryDirectory(_ name: String) throws -> URL {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("steadyws-swift-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

/// Every event of a socket, recorded by reading its `events` stream: the socket's one consumer
/// while the recorder lives (do not start another reader on the same socket).
final class Recorder: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var recorded: [SocketEvent] = []
    private var ended = false
    private var reader: Task<Void, Never>?

    init(_ socket: Socket) {
        let stream = socket.events
        let task = Task { [weak self] in
            do {
                for try await event in stream {
                    guard let self else { return }
                    self.append(event)
                }
            } catch {
                XCTFail("the recorder's stream threw \(error)")
            }
            self?.finish()
        }
        lock.lock()
        reader = task
        lock.unlock()
    }

    deinit {
        reader?.cancel()
    }

    private func append(_ event: SocketEvent) {
        lock.lock()
        recorded.append(event)
        lock.unlock()
    }

    private func finish() {
        lock.lock()
        ended = true
        lock.unlock()
    }

    /// Everything so far.
    var events: [SocketEvent] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }

    /// True once the `events` stream ended.
    var isEnded: Bool {
        lock.lock()
        defer { lock.unlock() }
        return ended
    }

    var count: Int { events.count }

    var states: [SocketState] { events.compactMap { $0.stateChange } }

    /// `(state, cause)` of every state change.
    var changes: [(state: SocketState, cause: StateCause)] {
        events.compactMap { event -> (state: SocketState, cause: StateCause)? in
            if case let .stateChanged(state, cause) = event {
                return (state: state, cause: cause)
            }
            return nil
        }
    }

    var acked: [String] { events.compactMap { $0.ackedId } }

    /// Every message received.
    var messages: [ReceivedMessage] { events.compactMap { ReceivedMessage($0) } }

    /// Wait (polling every 20 ms) until `pick` accepts an event recorded at index `start` or
    /// later; on timeout, throw a description listing what was seen.
    @discardableResult
    func waitFor<T>(
        _ what: String,
        from start: Int = 0,
        timeout: TimeInterval = 15,
        _ pick: (SocketEvent) -> T?
    ) async throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let seen = events
            if start < seen.count {
                for event in seen[start...] {
                    if let picked = pick(event) {
                        return picked
                    }
                }
            }
            if Date() > deadline {
                let listed = seen.suffix(30).map { "\($0)" }.joined(separator: "\n  ")
                throw SupportError(description: "no \(what) within \(timeout) s; last events:\n  \(listed)")
            }
            try await pause(0.02)
        }
    }

    /// Wait until the socket reports `state` (recorded at index `start` or later).
    func waitForState(_ state: SocketState, from start: Int = 0, timeout: TimeInterval = 15) async throws {
        try await waitFor("state \(state)", from: start, timeout: timeout) { event -> Bool? in
            event.stateChange == state ? true : nil
        }
    }
}

/// Read `stream` until `done` accepts what was read, at most `timeout`; returns what was read
/// (possibly incomplete: the caller checks). On timeout the reading task is cancelled, which ends
/// a `Socket` stream at once.
func collect<S: AsyncSequence & Sendable>(
    _ stream: S,
    within timeout: TimeInterval,
    until done: @escaping @Sendable ([S.Element]) -> Bool
) async -> [S.Element] where S.Element: Sendable {
    typealias T = S.Element
    return await withTaskGroup(of: [T]?.self, returning: [T].self) { group in
        group.addTask {
            var items: [T] = []
            do {
                for try await item in stream {
                    items.append(item)
                    if done(items) {
                        break
                    }
                }
            } catch {
                XCTFail("reading the stream threw \(error) after \(items.count) items")
            }
            return items
        }
        group.addTask {
            try? await pause(timeout)
            return nil
        }
        let first = await group.next()
        group.cancelAll()
        if case let .some(.some(items)) = first {
            return items
        }
        // The time limit came first: the cancelled reader returns what it had.
        while let next = await group.next() {
            if let items = next {
                return items
            }
        }
        return []
    }
}

/// Everything `stream` yields until it ends, and the error that ended it (nil: it just ended).
func drain<S: AsyncSequence>(_ stream: S) async -> (items: [S.Element], error: Error?) {
    var items: [S.Element] = []
    do {
        for try await item in stream {
            items.append(item)
        }
        return (items, nil)
    } catch {
        return (items, error)
    }
}

/// The error `body` throws, or nil when it returns.
func thrownError<T>(_ body: () async throws -> T) async -> Error? {
    do {
        _ = try await body()
        return nil
    } catch {
        return error
    }
}

/// `Task.sleep` in seconds.
func pause(_ seconds: TimeInterval) async throws {
    try await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1e9))
}

/// A field of /proc/self/status in bytes (Linux: `VmRSS`, `VmHWM`, given in kB); nil elsewhere.
private func procStatusBytes(_ field: String) -> UInt64? {
    #if os(Linux)
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else {
        return nil
    }
    for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
        let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        return parts.compactMap { UInt64($0) }.first.map { $0 * 1_024 }
    }
    return nil
    #else
    return nil
    #endif
}

/// The peak resident memory of this process so far, in bytes (Linux: `VmHWM`; Apple platforms:
/// getrusage's `ru_maxrss`, in bytes there); 0 if unknown.
func peakResidentBytes() -> UInt64 {
    #if os(Linux)
    return procStatusBytes("VmHWM") ?? 0
    #else
    var usage = rusage()
    guard getrusage(RUSAGE_SELF, &usage) == 0 else {
        return 0
    }
    return UInt64(max(0, usage.ru_maxrss))
    #endif
}

/// The resident memory of this process now, in bytes (Linux: `VmRSS`). Apple platforms: the peak
/// so far (`ru_maxrss`), so a growth measured with it is a lower bound.
func residentBytes() -> UInt64 {
    #if os(Linux)
    return procStatusBytes("VmRSS") ?? 0
    #else
    return peakResidentBytes()
    #endif
}

/// Wait (polling every 50 ms) until `condition` holds; false on timeout.
func eventually(timeout: TimeInterval, _ condition: () -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline {
            return false
        }
        try await pause(0.05)
    }
    return true
}

/// An async call started at once on a task of its own, whose result is awaited with a time limit.
/// A call into Rust that never returns cannot be cancelled, so `value(within:)` gives up (and the
/// test fails) instead of hanging the suite.
final class Pending<T: Sendable>: @unchecked Sendable {
    // Guarded by `lock`; taken in synchronous methods only (NSLock is not for async contexts).
    private let lock = NSLock()
    private var result: T?
    private var done = false

    init(_ operation: @escaping @Sendable () async -> T) {
        Task {
            let value = await operation()
            self.finish(value)
        }
    }

    private func finish(_ value: T) {
        lock.lock()
        result = value
        done = true
        lock.unlock()
    }

    private func snapshot() -> (done: Bool, result: T?) {
        lock.lock()
        defer { lock.unlock() }
        return (done, result)
    }

    /// True once the call returned.
    var isDone: Bool { snapshot().done }

    /// The call's result, waiting (polling every 20 ms) at most `timeout`; nil while it is still
    /// pending.
    func value(within timeout: TimeInterval) async throws -> T? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let now = snapshot()
            if now.done {
                return now.result
            }
            if Date() > deadline {
                return nil
            }
            try await pause(0.02)
        }
    }
}

/// The kind of `error` when it is a `SteadyWSError`; nil otherwise.
func kind(_ error: Error?) -> ErrorKind? {
    (error as? SteadyWSError)?.kind
}
