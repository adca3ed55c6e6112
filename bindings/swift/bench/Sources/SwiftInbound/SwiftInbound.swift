// Inbound throughput into a Swift app: small messages delivered by steadyws through the Swift
// layer (`Socket`, its `events` sequence) vs the same messages read through the Rust API,
// from the same reference server, in the same run. The Swift counterpart of
// bindings/kotlin/bench/Inbound.kt.
//
// The baseline is not another Swift WebSocket client: on Linux, Foundation's
// URLSessionWebSocketTask needs a libcurl built with WebSocket support, and Debian's has none. It
// is the Rust core itself, `steadyws::Socket::next_events(256)` in one task of a Rust process
// (`bench --inbound-reader`, the tests crate's bench binary; see its `inbound_reader`). So the
// ratio says what the FFI and the Swift layer cost on top of the core (1.0: nothing), not how
// steadyws compares with an alternative client; by construction it stays at or below about 1.
//
// It starts its own reference server (`--history` above the message count), publishes N small
// messages `{"n":i,"text":"hello"}` into its stream (a Socket sending them and counting the
// acks), then times each client from creating its socket to the N-th message in hand, both
// replaying the stream from the start (`resumeLastSeq = 0`):
//   - Swift: `for try await event in socket.events`, checking that the messages' seq runs
//     1, 2, …, N with nothing between them but the state changes of one connection;
//   - Rust: the same check in the reader process, which stays up for the whole run so that it is
//     as warm as this one; its time is measured inside it (process start-up is not counted).
// One untimed warm-up run of each, then RUNS runs, each Swift run followed by a Rust run. It
// prints one JSON line: the median rate of each, and the median, min and max of the per-run ratios
// (Swift / Rust, each Swift run paired with the Rust run that follows it). Progress on stderr.
//
// Usage: SwiftInbound SERVER_BINARY READER_BINARY LIBRARY_LABEL [MESSAGES [RUNS]]
// READER_BINARY is the tests crate's `bench` (release). LIBRARY_LABEL names the native library
// under test ("debug", "release") and is printed as is. With STEADYWS_BENCH_LIB set, the bench
// fails unless that file is the libsteadyws_ffi this process loaded (Linux: /proc/self/maps).
// STEADYWS_BENCH_SWIFT, when set, is printed as the "swift" field (the toolchain's version).
// Fails (exit status 1, the reason on stderr) when a client gets anything but the N messages in
// order, when the server refuses a message, or when any step exceeds its time bound.

import Foundation
import SteadyWS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Every wait of the bench ends within this (a whole timed run included).
let boundSeconds = 120

let defaultMessages = 20_000

struct BenchFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

func log(_ message: String) {
    FileHandle.standardError.write(Data("inbound: \(message)\n".utf8))
}

// MARK: - Child processes

/// The processes this bench started: every way out stops them, a signal included (run.sh's
/// `timeout` sends SIGTERM), so that no server outlives the bench.
final class Children: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var processes: [Process] = []

    func add(_ process: Process) {
        lock.lock()
        processes.append(process)
        lock.unlock()
    }

    /// SIGKILL `process` (if it still runs) and reap it.
    func stop(_ process: Process) {
        lock.lock()
        processes.removeAll { $0 === process }
        lock.unlock()
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
    }

    func stopAll() {
        lock.lock()
        let all = processes
        lock.unlock()
        for process in all {
            stop(process)
        }
    }
}

let children = Children()

/// Stop the children on SIGTERM, SIGINT and SIGHUP, then exit; keep the sources alive.
func stopChildrenOnSignals() -> [any DispatchSourceSignal] {
    [SIGTERM, SIGINT, SIGHUP].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            children.stopAll()
            log("stopped by signal \(number)")
            exit(128 + number)
        }
        source.resume()
        return source
    }
}

/// The lines a child writes, read on a thread of their own until EOF (so the child never blocks
/// on a full pipe), handed out with a time bound.
final class LineReader: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var lines: [String] = []
    private var ended = false
    private let arrived = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            var buffer = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty {
                    break
                }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                    buffer.removeSubrange(buffer.startIndex...newline)
                    push(line)
                }
            }
            end()
        }
    }

    /// The next line; nil at EOF or when none came within `seconds`.
    func next(within seconds: Double) -> String? {
        let deadline = DispatchTime.now() + seconds
        while true {
            lock.lock()
            if !lines.isEmpty {
                let line = lines.removeFirst()
                lock.unlock()
                return line
            }
            let atEnd = ended
            lock.unlock()
            if atEnd || arrived.wait(timeout: deadline) == .timedOut {
                return nil
            }
        }
    }

    private func push(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
        arrived.signal()
    }

    private func end() {
        lock.lock()
        ended = true
        lock.unlock()
        arrived.signal()
    }
}

// MARK: - The reference server

final class ReferenceServer {
    let url: String
    private let process: Process

    init(binary: String, history: Int) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--listen", "127.0.0.1:0", "--history", String(history)]
        var environment = ProcessInfo.processInfo.environment
        environment["RUST_LOG"] = "warn"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        children.add(process)
        let lines = LineReader(output.fileHandleForReading)
        let prefix = "listening on "
        let deadline = Date().addingTimeInterval(20)
        var found: String?
        while found == nil, case let left = deadline.timeIntervalSinceNow, left > 0,
              let line = lines.next(within: left) {
            if line.hasPrefix(prefix) {
                found = String(line.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
            }
        }
        guard let found else {
            children.stop(process)
            throw BenchFailure("\(binary) did not report `listening on <url>` (within 20 s, or it exited)")
        }
        url = found
    }

    func stop() {
        children.stop(process)
    }
}

// MARK: - The baseline: the Rust API, in the reader process

/// `bench --inbound-reader URL`: one replay per request line, timed inside it.
final class RustReader {
    private let process: Process
    private let requests: FileHandle
    private let answers: LineReader

    init(binary: String, url: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--inbound-reader", url]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        children.add(process)
        requests = input.fileHandleForWriting
        answers = LineReader(output.fileHandleForReading)
    }

    private struct Answer: Decodable {
        let msgs_per_s: Double?
        let error: String?
    }

    /// Messages per second from creating the socket to the `count`-th message in hand, replaying
    /// after `resumeFrom`. Blocks this thread meanwhile: nothing else of this process runs then.
    func replay(count: Int, resumeFrom: UInt64 = 0) throws -> Double {
        try requests.write(contentsOf: Data("\(count) \(resumeFrom)\n".utf8))
        // Its own bound is boundSeconds; a little more here, so that its answer says why.
        guard let line = answers.next(within: Double(boundSeconds + 10)) else {
            throw BenchFailure("rust: no answer from the reader within \(boundSeconds + 10) s (or it exited)")
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(line.utf8)) else {
            throw BenchFailure("rust: unexpected answer from the reader: \(line)")
        }
        if let error = answer.error {
            throw BenchFailure("rust: \(error)")
        }
        guard let rate = answer.msgs_per_s else {
            throw BenchFailure("rust: no rate in the reader's answer: \(line)")
        }
        return rate
    }

    /// End of its stdin ends it; SIGKILL after 10 s.
    func stop() {
        try? requests.close()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning, Date() < deadline {
            usleep(10_000)
        }
        children.stop(process)
    }
}

// MARK: - steadyws through the Swift layer

/// `body`'s result, or a failure once `boundSeconds` have passed (the body is then cancelled,
/// which ends a loop over `events` quietly).
func bounded<T: Sendable>(_ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(boundSeconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw BenchFailure("\(what): not done within \(boundSeconds) s")
        }
        return value
    }
}

func seconds(_ duration: Duration) -> Double {
    let (whole, fraction) = duration.components
    return Double(whole) + Double(fraction) / 1e18
}

func lastText(_ count: Int) -> String {
    "{\"n\":\(count - 1),\"text\":\"hello\"}"
}

/// Stores `count` messages in the server's stream: sent by a Socket, each acked once.
func publish(url: String, count: Int) async throws {
    try await bounded("publishing \(count) messages") {
        // All of them are queued at once: room for them in the outbox, which counts each message
        // as framed (envelope and id: about 90 bytes for these 30-byte payloads).
        let socket = try Socket(url: url) {
            $0.outboxMaxMessages = UInt32(count + 10)
            $0.outboxMaxBytes = UInt64(count) * 256
        }
        defer { socket.close() }
        socket.connect()
        for n in 0..<count {
            _ = try socket.send("{\"n\":\(n),\"text\":\"hello\"}")
        }
        var acked = 0
        // The server also sends them back to this socket, live: passed over.
        for try await event in socket.events {
            switch event {
            case .acked:
                acked += 1
                if acked == count {
                    return
                }
            case let .sendFailed(id, reason, message, _):
                throw BenchFailure("the server refused a published message (\(id), \(reason)): \(message)")
            case let .serverError(code, message):
                throw BenchFailure("the server reported an error while publishing: \(code) \(message)")
            default:
                continue
            }
        }
        throw BenchFailure("publishing: the events ended after \(acked) acks")
    }
}

/// steadyws: messages per second from creating the socket to the `count`-th `.message` in hand,
/// replaying the stream after `resumeFrom`. Fails unless their seq runs 1…`count` with nothing
/// between them but the state changes of one connection.
func steadyws(url: String, count: Int, resumeFrom: UInt64 = 0) async throws -> Double {
    try await bounded("steadyws reading \(count) messages") {
        let clock = ContinuousClock()
        let started = clock.now
        let socket = try Socket(url: url) { $0.resumeLastSeq = resumeFrom }
        defer { socket.close() }
        socket.connect()
        var expected: UInt64 = 1
        var last: MessageData?
        reading: for try await event in socket.events {
            switch event {
            case let .message(_, seq, _, data, _, _):
                guard seq == expected else {
                    throw BenchFailure("steadyws: message \(expected) expected, got seq \(seq.map(String.init) ?? "none")")
                }
                expected += 1
                if expected > UInt64(count) {
                    last = data
                    break reading
                }
            case let .stateChanged(state, cause):
                switch state {
                case .connecting, .open:
                    continue
                default:
                    throw BenchFailure("steadyws: unexpected state \(state) (\(cause)) after \(expected - 1) messages")
                }
            default:
                throw BenchFailure("steadyws: unexpected event \(event) after \(expected - 1) messages")
            }
        }
        let elapsed = started.duration(to: clock.now)
        // A loop cancelled by the time bound ends like this too.
        guard expected > UInt64(count) else {
            throw BenchFailure("steadyws: the events ended after \(expected - 1) messages")
        }
        // Outside the timing: the last one is the last published.
        guard case let .json(json)? = last, json == lastText(count) else {
            throw BenchFailure("steadyws: last message \(String(describing: last)), expected \(lastText(count))")
        }
        return Double(count) / seconds(elapsed)
    }
}

// MARK: - Main

/// `body` must fail with a `BenchFailure` whose text contains `expected`.
func mustFail(_ what: String, expecting expected: String, _ body: () async throws -> Void) async throws {
    var failure: String?
    do {
        try await body()
    } catch let error as BenchFailure {
        failure = error.description
    }
    guard let failure, failure.contains(expected) else {
        throw BenchFailure("negative control \"\(what)\" was not caught as expected (\"\(expected)\"): \(failure ?? "it passed")")
    }
}

/// The files named libsteadyws_ffi* mapped into this process (Linux; empty elsewhere).
func loadedLibraries() -> [String] {
    #if os(Linux)
    // Read to the end: /proc files report a size of 0, which a read by size takes at its word.
    guard let file = FileHandle(forReadingAtPath: "/proc/self/maps"),
          let data = try? file.readToEnd() else { return [] }
    try? file.close()
    let maps = String(decoding: data, as: UTF8.self)
    let paths = maps.split(separator: "\n").compactMap { line -> String? in
        guard let slash = line.firstIndex(of: "/") else { return nil }
        let path = String(line[slash...])
        return path.contains("libsteadyws_ffi") ? path : nil
    }
    return Array(Set(paths)).sorted()
    #else
    return []
    #endif
}

/// The library under test must be the one loaded: an rpath or a library path that points
/// elsewhere (a debug build in target/debug) would silently measure another build.
func checkLoadedLibrary() throws {
    let loaded = loadedLibraries()
    guard let expected = ProcessInfo.processInfo.environment["STEADYWS_BENCH_LIB"], !expected.isEmpty else {
        log("library loaded: \(loaded.joined(separator: ", "))")
        return
    }
    let resolved = { (path: String) in URL(fileURLWithPath: path).resolvingSymlinksInPath().path }
    guard loaded.map(resolved) == [resolved(expected)] else {
        throw BenchFailure("the library loaded is \(loaded) instead of STEADYWS_BENCH_LIB=\(expected)")
    }
    log("library loaded: \(loaded[0])")
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

func json(_ value: String) -> String {
    var out = "\""
    for scalar in value.unicodeScalars {
        switch scalar {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

func three(_ value: Double) -> String {
    String(format: "%.3f", value)
}

func run(server binary: String, reader: String, library: String, count: Int, runs: Int) async throws -> String {
    try checkLoadedLibrary()
    let server = try ReferenceServer(binary: binary, history: count + 10)
    defer { server.stop() }
    let url = server.url
    log("publishing \(count) messages to \(url)")
    try await publish(url: url, count: count)
    let rust = try RustReader(binary: reader, url: url)
    defer { rust.stop() }

    // The checks catch a client that does not get messages 1…N in order: starting after seq 1
    // (the first message is 2) must fail in both.
    try await mustFail("steadyws resuming after seq 1", expecting: "message 1 expected, got seq 2") {
        _ = try await steadyws(url: url, count: count, resumeFrom: 1)
    }
    try await mustFail("Rust resuming after seq 1", expecting: "message 1 expected, got seq 2") {
        _ = try rust.replay(count: count, resumeFrom: 1)
    }
    log("negative controls: ok (a replay starting at seq 2 fails both clients' checks)")

    let warmOurs = try await steadyws(url: url, count: count)
    let warmTheirs = try rust.replay(count: count)
    log("warm-up: Swift \(Int(warmOurs))/s, Rust \(Int(warmTheirs))/s (not counted)")
    var ours: [Double] = []
    var theirs: [Double] = []
    for run in 1...runs {
        ours.append(try await steadyws(url: url, count: count))
        theirs.append(try rust.replay(count: count))
        log("run \(run)/\(runs): Swift \(Int(ours[run - 1]))/s, Rust \(Int(theirs[run - 1]))/s")
    }
    let ratios = zip(ours, theirs).map { $0 / $1 }
    var fields = [
        "\"bench\":\"swift_inbound\"",
        "\"messages\":\(count)",
        "\"runs\":\(runs)",
        "\"warmup_runs\":1",
        "\"steadyws_events_per_s\":\(Int(median(ours)))",
        "\"rust_next_events_per_s\":\(Int(median(theirs)))",
        "\"ratio\":{\"median\":\(three(median(ratios))),\"min\":\(three(ratios.min()!)),\"max\":\(three(ratios.max()!))}",
        "\"library\":\(json(library))",
    ]
    if library == "debug" {
        fields.append("\"library_note\":\"the DEBUG (unoptimised) Rust library: the Swift figure mostly measures debug code; bindings/swift/bench/run.sh measures the release build\"")
    }
    if count != defaultMessages {
        fields.append("\"messages_note\":\"reduced from \(defaultMessages) for a quick run\"")
    }
    fields.append("\"baseline\":\"the Rust API (Socket::next_events(256) in one task; the release bench binary of the tests crate, a separate process on the same server): the same core without the FFI and the Swift layer, so the ratio is what the binding costs, not a comparison with another Swift client\"")
    if let swift = ProcessInfo.processInfo.environment["STEADYWS_BENCH_SWIFT"], !swift.isEmpty {
        fields.append("\"swift\":\(json(swift))")
    }
    return "{" + fields.joined(separator: ",") + "}"
}

@main
struct SwiftInbound {
    static func main() async {
        let args = Array(CommandLine.arguments.dropFirst())
        guard (3...5).contains(args.count) else {
            log("usage: SwiftInbound SERVER_BINARY READER_BINARY LIBRARY_LABEL [MESSAGES [RUNS]]")
            exit(2)
        }
        let count = args.count > 3 ? Int(args[3]) : defaultMessages
        let runs = args.count > 4 ? Int(args[4]) : 5
        guard let count, let runs, count >= 2, runs >= 1 else {
            log("MESSAGES must be a number, at least 2, and RUNS at least 1")
            exit(2)
        }
        // A reader that died must fail its request, not kill this process.
        signal(SIGPIPE, SIG_IGN)
        let signals = stopChildrenOnSignals()
        do {
            let line = try await run(server: args[0], reader: args[1], library: args[2], count: count, runs: runs)
            print(line)
        } catch {
            children.stopAll()
            log("FAILED: \(error)")
            exit(1)
        }
        children.stopAll()
        withExtendedLifetime(signals) {}
        exit(0)
    }
}
