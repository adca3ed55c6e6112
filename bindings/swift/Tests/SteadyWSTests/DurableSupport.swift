// Test support for the durable store: options with a store, the server's stream read by a plain
// WebSocket client, a seeded random generator, store files made by hand, and a child process
// running one role of this test bundle so that a test can SIGKILL it.

import Foundation
import XCTest
import SteadyWS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `quickOptions(url)` with the store `name` in `directory`.
func durableOptions(_ url: String, store directory: URL, name: String = StoreConfig.defaultName) -> SocketConfig {
    var options = quickOptions(url)
    options.store = StoreConfig(directory: directory, name: name)
    return options
}

/// The `n` of a JSON object `{"n": …, …}`; nil for anything else.
func numberField(_ json: String) -> Int? {
    guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
        return nil
    }
    return (object["n"] as? NSNumber)?.intValue
}

// MARK: - The server's stream, read without steadyws

/// One `msg` frame of the server's stream.
struct StreamFrame: Sendable, Hashable {
    let seq: UInt64
    let id: String
    /// `data.n` when the data is an object with a number `n`.
    let n: Int?
}

/// Every `msg` frame of the server's stream, seq 1 to the head, as the server stored them,
/// duplicates included. The reader is a socket in raw mode: it passes every text frame through
/// as it came (no envelope, no dedup, no resume cursor of its own), so it sees the stream as any
/// plain WebSocket client would. It connects with `last_seq=0`, so the server replays its whole
/// history; the `hello` frame says where the head is. (Foundation's `URLSessionWebSocketTask`
/// would do on Apple platforms, but on Linux it needs a libcurl built with WebSocket support,
/// which Debian's is not.)
func readServerStream(_ server: ReferenceServer, timeout: TimeInterval = 10) async throws -> [StreamFrame] {
    var options = SocketConfig(url: "ws://127.0.0.1:\(server.port)/ws")
    options.rawMode = true
    options.resumeLastSeq = 0   // `last_seq=0` on the URL (the socket owns that parameter)
    options.connectTimeoutMs = 3_000
    let reader = try NativeSocket(config: options)
    // Also ends a `nextEvents` still pending when the time limit passes.
    defer { reader.close() }
    reader.connect()
    let deadline = Date().addingTimeInterval(timeout)
    var head: UInt64?
    var frames: [StreamFrame] = []
    while head.map({ UInt64(frames.count) < $0 }) ?? true {
        let progress = "after \(frames.count) of \(head.map { "\($0)" } ?? "?") messages"
        let pull = Pending { (try? await reader.nextEvents()) ?? [] }
        guard let events = try await pull.value(within: deadline.timeIntervalSinceNow) else {
            throw SupportError(description: "reading the server's stream: timed out \(progress)")
        }
        guard !events.isEmpty else {
            throw SupportError(description: "reading the server's stream: the reader ended \(progress)")
        }
        for event in events {
            guard case let .message(_, _, _, .text(text), _, _) = event else {
                continue   // the reader's own state changes
            }
            guard let frame = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                  let type = frame["type"] as? String
            else {
                throw SupportError(description: "not a JSON object frame: \(text)")
            }
            switch type {
            case "hello":
                head = (frame["seq"] as? NSNumber)?.uint64Value ?? 0
            case "msg":
                guard let seq = (frame["seq"] as? NSNumber)?.uint64Value, let id = frame["id"] as? String else {
                    throw SupportError(description: "a msg frame without seq or id: \(text)")
                }
                let data = frame["data"] as? [String: Any]
                frames.append(StreamFrame(seq: seq, id: id, n: (data?["n"] as? NSNumber)?.intValue))
            default:
                continue   // a pong or a notice: not part of the stream
            }
        }
    }
    return frames
}

// MARK: - Random moments, reproducible

/// SplitMix64: a seeded generator, so a failing run can be repeated with its seed
/// (`STEADYWS_TEST_SEED`).
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    /// The seed from `STEADYWS_TEST_SEED`, else a random one.
    static func seedFromEnvironment() -> UInt64 {
        if let text = ProcessInfo.processInfo.environment["STEADYWS_TEST_SEED"], let seed = UInt64(text) {
            return seed
        }
        return UInt64.random(in: 0..<(1 << 30))
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - Store files made by hand

/// An empty SQLite database of one 512-byte page whose `user_version` (bytes 60–63) is 99: a store
/// written by a steadyws from the future. Made with Python's sqlite3 (`PRAGMA page_size=512;
/// PRAGMA user_version=99`); only these bytes are not zero.
func futureStoreFile() -> Data {
    var bytes = [UInt8](repeating: 0, count: 512)
    let magic = Array("SQLite format 3".utf8)   // then a NUL, at offset 15
    bytes.replaceSubrange(0..<magic.count, with: magic)
    let set: [(offset: Int, value: UInt8)] = [
        (16, 2), (18, 1), (19, 1), (21, 64), (22, 32), (23, 32), (27, 1), (31, 1), (63, 99),
        (95, 1), (97, 46), (98, 99), (99, 1), (100, 13), (105, 2),
    ]
    for (offset, value) in set {
        bytes[offset] = value
    }
    return Data(bytes)
}

// MARK: - A child process to SIGKILL

/// One run of `DurableChild.testChildRole` (this test bundle, one test selected) in a child
/// process: an app using a store, which the test kills with SIGKILL at any moment (no deinit, no
/// `close()`, no flush: only what the store committed survives).
///
/// The child writes its lines (`sent …`, `got …`) to a file of its own, one `write(2)` per line,
/// so what the test reads after a kill is what the child had done; its XCTest output goes to a
/// log file next to it.
///
/// How the bundle is run again: on Linux a test bundle is an executable (the one running now,
/// `/proc/self/exe`) that takes the test's name as argument; on Apple platforms it is a bundle
/// that `xctest` loads (`xcrun xctest -XCTest NAME BUNDLE`, as `swift test` runs it).
final class ChildRun {
    /// The test the child runs.
    static let selector = "SteadyWSTests.DurableChild/testChildRole"

    /// The child's lines.
    let output: URL
    /// Its XCTest output (stdout and stderr).
    let log: URL
    private let process: Process
    /// False until the process was started (a `Process` never run must not be waited for).
    private var launched = false

    /// Start the child with `STEADYWS_CHILD_ROLE=role` and `STEADYWS_CHILD_<KEY>=value` for each
    /// setting; its files are `<directory>/<name>.lines` and `.log`.
    init(role: String, name: String, in directory: URL, settings: [String: String]) throws {
        output = directory.appendingPathComponent("\(name).lines")
        log = directory.appendingPathComponent("\(name).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        guard let logHandle = FileHandle(forWritingAtPath: log.path) else {
            throw SupportError(description: "cannot write \(log.path)")
        }
        process = Process()
        let (executable, arguments) = Self.command()
        process.executableURL = executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["STEADYWS_CHILD_ROLE"] = role
        environment["STEADYWS_CHILD_OUTPUT"] = output.path
        for (key, value) in settings {
            environment["STEADYWS_CHILD_\(key)"] = value
        }
        environment["RUST_LOG"] = environment["RUST_LOG"] ?? "warn"
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = logHandle
        process.standardError = logHandle
        try process.run()
        launched = true
    }

    /// The command that runs this bundle with only `selector`.
    static func command() -> (URL, [String]) {
        #if os(Linux)
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return (executable, [selector])
        #else
        let bundle = Bundle(for: DurableChild.self).bundleURL
        return (URL(fileURLWithPath: "/usr/bin/xcrun"), ["xctest", "-XCTest", selector, bundle.path])
        #endif
    }

    /// Every complete line the child wrote so far.
    var lines: [String] {
        guard let text = try? String(contentsOf: output, encoding: .utf8) else {
            return []
        }
        var lines = text.components(separatedBy: "\n")
        lines.removeLast()   // after the last newline: empty, or a line being written
        return lines
    }

    /// The child's XCTest output, for failure messages.
    var logText: String {
        (try? String(contentsOf: log, encoding: .utf8)) ?? ""
    }

    var isRunning: Bool { process.isRunning }

    /// Wait (polling every 5 ms) until the child wrote at least `count` lines; throws when it
    /// exits first or after `timeout`.
    @discardableResult
    func waitForLines(_ count: Int, timeout: TimeInterval = 30) async throws -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let now = lines
            if now.count >= count {
                return now
            }
            if !process.isRunning {
                let last = lines
                if last.count >= count {
                    return last
                }
                throw SupportError(description:
                    "the child exited after \(last.count) of \(count) lines: \(last)\n\(logText)")
            }
            if Date() > deadline {
                throw SupportError(description: "the child wrote \(now.count) of \(count) lines in \(timeout) s: \(now)\n\(logText)")
            }
            try await pause(0.005)
        }
    }

    /// SIGKILL, like the OS killing a suspended app or a crash.
    func sigkill() {
        guard launched else { return }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
    }

    /// Wait until the child exits by itself; its exit status, or nil when it was killed by a
    /// signal. Throws (after killing it) when it is still running after `timeout`.
    func waitForExit(timeout: TimeInterval) async throws -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                sigkill()
                throw SupportError(description: "the child still ran after \(timeout) s: \(lines)\n\(logText)")
            }
            try await pause(0.02)
        }
        return process.terminationReason == .exit ? process.terminationStatus : nil
    }

    deinit {
        sigkill()
    }
}

/// The child's side of `ChildRun.output`: one `write(2)` per line, nothing buffered, so a line
/// is in the file as soon as `say` returns, whatever kills the process next.
final class ChildOutput {
    private let handle: FileHandle

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil),
              let handle = FileHandle(forWritingAtPath: path)
        else {
            throw SupportError(description: "cannot write \(path)")
        }
        self.handle = handle
    }

    func say(_ line: String) {
        handle.write(Data((line + "\n").utf8))
    }
}
