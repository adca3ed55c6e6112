// The durable store (`SocketConfig.store`): what a SIGKILLed app loses (nothing it sent, at most
// the one message in hand it read), `pending()` / `cancel(_:)`, restoring a store, and its errors.
// The same tests, with the same assertions, run in pytest (bindings/python/tests/test_store.py)
// and JUnit.
//
// The two SIGKILL tests drive the real bindings in a child process (`ChildRun`: this test bundle
// run again with only `DurableChild.testChildRole` selected) and kill it at random moments. They
// run under `swift test` on Linux (test.sh) and are written for macOS too.

import Foundation
import XCTest
import SteadyWS

final class DurableTests: XCTestCase {
    // MARK: - SIGKILL: sending

    /// A child sends {"n": 0…199} through a store and is SIGKILLed at 5 random moments, then
    /// started again on the same store from the last n it printed + 1; the last run waits until
    /// `pending()` is empty. The server's stream holds every id the child printed (a `send` that
    /// returned) exactly once, in printed order. A kill between writing a message to disk and
    /// printing its id can leave that message in the stream unprinted (the child then sends the
    /// same n again with a new id): at most one per kill.
    func testSigkilledSenderLosesAndDuplicatesNothing() async throws {
        let count = 200
        let kills = 5
        let seed = SeededGenerator.seedFromEnvironment()
        var random = SeededGenerator(seed: seed)
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let directory = try temporaryDirectory("sigkill-send")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = directory.appendingPathComponent("store", isDirectory: true)

        var printed: [(id: String, n: Int)] = []
        var runLengths: [Int] = []
        for run in 0...kills {
            let first = printed.last.map { $0.n + 1 } ?? 0
            let child = try ChildRun(role: "send", name: "send-\(run)", in: directory, settings: [
                "URL": server.url, "STORE": store.path, "FIRST": "\(first)", "COUNT": "\(count)",
            ])
            if run < kills {
                // Killed at a random moment once the socket is sending (or, rarely, sooner).
                try await child.waitForLines(1)
                try await pause(Double.random(in: 0...0.08, using: &random))
                child.sigkill()
            } else {
                let status = try await child.waitForExit(timeout: 60)
                XCTAssertEqual(status, 0, "seed \(seed): the last run failed:\n\(child.logText)")
                XCTAssertEqual(child.lines.last, "all acked", "seed \(seed)")
            }
            var sent = 0
            for line in child.lines where line.hasPrefix("sent ") {
                let parts = line.split(separator: " ")
                let n = try XCTUnwrap(parts.count == 3 ? Int(parts[2]) : nil, "line \(line)")
                printed.append((id: String(parts[1]), n: n))
                sent += 1
            }
            runLengths.append(sent)
        }

        XCTAssertEqual(printed.map { $0.n }, Array(0..<count), "seed \(seed)")
        let stream = try await readServerStream(server)
        let ids = stream.map { $0.id }
        let printedIds = printed.map { $0.id }
        let printedSet = Set(printedIds)
        // The server dedups resends: nothing is stored twice.
        let counts = Dictionary(ids.map { ($0, 1) }, uniquingKeysWith: +)
        XCTAssertEqual(counts.filter { $0.value > 1 }.map { $0.key }, [], "seed \(seed)")
        // Every message whose send returned is there, once, in the order it was sent, as sent.
        XCTAssertEqual(ids.filter { printedSet.contains($0) }, printedIds, "seed \(seed)")
        let numbers = Dictionary(stream.map { ($0.id, $0.n) }, uniquingKeysWith: { first, _ in first })
        for (id, n) in printed {
            XCTAssertEqual(numbers[id] ?? nil, n, "seed \(seed): message \(id)")
        }
        // Unprinted: written before a kill, the id never reached the app. One per kill at most,
        // each an n the next run sent again.
        var starts: Set<Int> = []
        var start = 0
        for length in runLengths {
            starts.insert(start)
            start += length
        }
        let unprinted = stream.filter { !printedSet.contains($0.id) }.map { $0.n }
        XCTAssertLessThanOrEqual(unprinted.count, kills, "seed \(seed): \(unprinted)")
        for n in unprinted {
            XCTAssertTrue(n.map { starts.contains($0) } ?? false, "seed \(seed): unprinted n \(String(describing: n)) is not a restart point \(starts.sorted())")
        }
        print("[sigkilled sender] seed \(seed): sends per run \(runLengths), stream \(ids.count) messages, "
            + "\(unprinted.count) written but unprinted at a kill")
    }

    // MARK: - SIGKILL: reading

    /// The server publishes 100 messages while a child reads them one at a time through a store,
    /// processing each for 10 ms; the child is SIGKILLed 3 times at random moments and started
    /// again. Every message is printed; one printed twice was in hand at a kill: its second print
    /// is the first of the next run and says `redelivered`; at most one per kill.
    func testSigkilledReaderGetsEverythingAndOnlyTheMessageInHandAgain() async throws {
        let count = 100
        let kills = 3
        let seed = SeededGenerator.seedFromEnvironment()
        var random = SeededGenerator(seed: seed)
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let directory = try temporaryDirectory("sigkill-read")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = directory.appendingPathComponent("store", isDirectory: true)

        var runs: [[(id: String, redelivered: Bool)]] = []
        var published: [String] = []
        for run in 0...kills {
            let child = try ChildRun(role: "read", name: "read-\(run)", in: directory, settings: [
                "URL": server.url, "STORE": store.path, "LAST": "\(count - 1)",
            ])
            let opened = try await child.waitForLines(1)
            XCTAssertEqual(opened.first, "open", "seed \(seed)")
            if run == 0 {
                published = try await publish(server.url, count: count)
            }
            if run < kills {
                // Killed after a random number of messages, at a random moment of the next one.
                try await child.waitForLines(1 + Int.random(in: 1...12, using: &random))
                try await pause(Double.random(in: 0...0.012, using: &random))
                child.sigkill()
            } else {
                let status = try await child.waitForExit(timeout: 60)
                XCTAssertEqual(status, 0, "seed \(seed): the last run failed:\n\(child.logText)")
            }
            var got: [(id: String, redelivered: Bool)] = []
            for line in child.lines.dropFirst() {
                let parts = line.split(separator: " ")
                guard parts.count == 3, parts[0] == "got" else {
                    XCTFail("seed \(seed): unexpected line \(line)")
                    continue
                }
                got.append((id: String(parts[1]), redelivered: parts[2] == "1"))
            }
            runs.append(got)
        }

        let printed = runs.flatMap { $0.map { $0.id } }
        XCTAssertEqual(Set(printed), Set(published), "seed \(seed)")
        var firstPrints: [String] = []
        var seen: Set<String> = []
        for id in printed where !seen.contains(id) {
            seen.insert(id)
            firstPrints.append(id)
        }
        XCTAssertEqual(firstPrints, published, "seed \(seed): not in order")
        let repeats = printed.count - firstPrints.count
        XCTAssertLessThanOrEqual(repeats, kills, "seed \(seed): \(runs)")
        seen = []
        for (run, got) in runs.enumerated() {
            for (position, message) in got.enumerated() {
                if seen.contains(message.id) {
                    // A second print: the message in hand at the kill.
                    XCTAssertTrue(message.redelivered, "seed \(seed): run \(run), \(message.id) again without the flag")
                }
                if message.redelivered {
                    // Only ever the first message after a restart.
                    XCTAssertTrue(run > 0 && position == 0, "seed \(seed): run \(run) position \(position) flagged")
                }
                seen.insert(message.id)
            }
        }
        print("[sigkilled reader] seed \(seed): messages per run \(runs.map { $0.count }), "
            + "\(repeats) delivered again (flagged redelivered)")
    }

    // MARK: - pending, cancel, restore

    /// Three messages sent while no server listens stay in the store after close; a new socket on
    /// it lists them at once, in order, with their ids and times; cancelling the middle one
    /// removes it for good; once the server is up, the other two are acknowledged and only they
    /// reach its stream.
    func testPendingSurviveCloseAndCancelIsDurable() async throws {
        // A port nothing listens on yet: the server is started there later.
        let server = try ReferenceServer.start()
        let url = server.url
        server.sigkill()
        let directory = try temporaryDirectory("pending")
        defer { try? FileManager.default.removeItem(at: directory) }

        let before = Date()
        let first = try Socket(config: durableOptions(url, store: directory))
        first.connect()
        var ids: [String] = []
        for n in 0..<3 {
            ids.append(try first.send("{\"n\":\(n)}"))
        }
        XCTAssertEqual(first.pending().map { $0.id }, ids)
        first.close()
        let after = Date()

        let second = try Socket(config: durableOptions(url, store: directory))
        let pending = second.pending()   // before connecting
        XCTAssertEqual(pending.map { $0.id }, ids)
        XCTAssertEqual(pending.map { numberField($0.json) }, [0, 1, 2])
        for message in pending {
            XCTAssertGreaterThanOrEqual(message.createdAt, before.addingTimeInterval(-0.001))
            XCTAssertLessThanOrEqual(message.createdAt, after.addingTimeInterval(0.001))
        }
        let recorder = Recorder(second)
        XCTAssertTrue(try second.cancel(ids[1]))
        XCTAssertFalse(try second.cancel(ids[1]), "already settled")
        XCTAssertFalse(try second.cancel("no-such-id"))
        XCTAssertEqual(second.pending().map { $0.id }, [ids[0], ids[2]])
        let reason = try await recorder.waitFor("the cancelled message's sendFailed") { event -> SendFailureKind? in
            if case let .sendFailed(failedId, failure, _, _) = event, failedId == ids[1] {
                return failure
            }
            return nil
        }
        XCTAssertEqual(reason, .cancelled)
        second.close()

        // The removal was on disk: a third socket does not see it either.
        let third = try Socket(config: durableOptions(url, store: directory))
        defer { third.close() }
        let drain = Task {
            for try await _ in third.events {}
        }
        defer { drain.cancel() }
        XCTAssertEqual(third.pending().map { $0.id }, [ids[0], ids[2]])
        let restarted = try server.restart()
        defer { restarted.sigkill() }
        third.connect()
        try await third.waitAcked(ids[0], timeout: 10)
        try await third.waitAcked(ids[2], timeout: 10)
        XCTAssertEqual(third.pending(), [])
        let stream = try await readServerStream(restarted)
        XCTAssertEqual(stream.map { $0.id }, [ids[0], ids[2]])
    }

    /// Without a store too: a wait on a cancelled message ends with `.sendFailed(.cancelled)`, the
    /// event carries the payload; after close, `pending()` and `cancel(_:)` throw `.closed`.
    func testCancelWithoutAStoreEndsWaitsWithCancelled() async throws {
        let socket = try Socket(config: quickOptions("ws://127.0.0.1:1/ws"))   // never connected
        let recorder = Recorder(socket)
        let id = try socket.send(#"{"n":1}"#)
        let kept = try socket.send(#"{"n":2}"#)
        let created = try XCTUnwrap(socket.pending().first).createdAt
        let age = Date().timeIntervalSince(created)
        XCTAssertTrue(age >= -0.001 && age < 5, "created \(age) s ago")
        let waiter = Pending { () -> Error? in
            await thrownError { try await socket.waitAcked(id) }
        }
        try await pause(0.05)
        XCTAssertTrue(try socket.cancel(id))
        let ended = try await waiter.value(within: 5)   // nil while still waiting
        let error = ended.flatMap { $0 } as? SteadyWSError
        XCTAssertEqual(error?.kind, .sendFailed, "\(String(describing: ended))")
        XCTAssertEqual(error?.messageId, id)
        XCTAssertEqual(error?.sendFailure, .cancelled)
        XCTAssertEqual(socket.pending().map { $0.id }, [kept])
        let data = try await recorder.waitFor("sendFailed of \(id)") { event -> MessageData? in
            if case let .sendFailed(failed, _, _, payload) = event, failed == id {
                return payload
            }
            return nil
        }
        guard case let .json(json) = data else {
            XCTFail("expected the JSON payload, got \(data)")
            return
        }
        XCTAssertEqual(numberField(json), 1)
        socket.close()
        XCTAssertThrowsError(try socket.cancel(kept)) { error in
            XCTAssertEqual(kind(error), .closed)
        }
    }

    // MARK: - one owner

    func testAStoreHasOneOwner() throws {
        let directory = try temporaryDirectory("owner")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = "ws://127.0.0.1:1/ws"
        let owner = try Socket(config: durableOptions(url, store: directory))
        XCTAssertThrowsError(try Socket(config: durableOptions(url, store: directory))) { error in
            XCTAssertEqual(kind(error), .storeInUse, "\(error)")
            let message = (error as? SteadyWSError)?.message ?? ""
            XCTAssertTrue(message.contains("in use"), message)
            XCTAssertEqual("\(error)", message)
        }
        // The generated API throws the generated error.
        XCTAssertThrowsError(try NativeSocket(config: durableOptions(url, store: directory))) { error in
            guard case .Failure(.storeInUse, _, _, _)? = error as? NativeError else {
                XCTFail("expected NativeError.Failure(.storeInUse, …), got \(error)")
                return
            }
        }
        // Another name in the same directory is another store.
        try Socket(config: durableOptions(url, store: directory, name: "other")).close()
        owner.close()   // releases it
        try Socket(config: durableOptions(url, store: directory)).close()
    }

    // MARK: - errors

    func testStoreErrors() throws {
        let directory = try temporaryDirectory("errors")
        defer { try? FileManager.default.removeItem(at: directory) }
        let notADirectory = directory.appendingPathComponent("file")
        XCTAssertTrue(FileManager.default.createFile(atPath: notADirectory.path, contents: Data()))
        XCTAssertThrowsError(try Socket(config: durableOptions("ws://127.0.0.1:1/ws", store: notADirectory))) { error in
            XCTAssertEqual(kind(error), .storeFailed, "\(error)")
            let message = (error as? SteadyWSError)?.message ?? ""
            XCTAssertTrue(message.contains(notADirectory.path), message)
        }
        var raw = SocketConfig(url: "ws://127.0.0.1:1/raw")
        raw.rawMode = true
        raw.store = StoreConfig(directory: directory)
        XCTAssertThrowsError(try Socket(config: raw)) { error in
            XCTAssertEqual(kind(error), .invalidOptions, "\(error)")
            let message = (error as? SteadyWSError)?.message ?? ""
            XCTAssertTrue(message.contains("raw"), message)
        }
    }

    /// A file that is not an SQLite database: moved aside (kept for inspection), a fresh store in
    /// its place, and a `.storeRecovered` event first.
    func testADamagedStoreIsMovedAsideAndReported() async throws {
        let directory = try temporaryDirectory("damaged")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = StoreConfig(directory: directory)
        let garbage = Data(repeating: 0x5A, count: 4_096)
        XCTAssertTrue(FileManager.default.createFile(atPath: store.file.path, contents: garbage))

        var options = quickOptions("ws://127.0.0.1:1/ws")
        options.store = store
        let socket = try Socket(config: options)
        defer { socket.close() }
        let events = await collect(socket.events, within: 5) { $0.count >= 1 }
        let first = events.first
        guard case let .storeRecovered(problem, recoveredMessages, movedTo)? = first else {
            XCTFail("expected .storeRecovered first, got \(String(describing: first))")
            return
        }
        XCTAssertFalse(problem.isEmpty)
        XCTAssertEqual(recoveredMessages, 0)
        let moved = try XCTUnwrap(movedTo)
        XCTAssertEqual(FileManager.default.contents(atPath: moved), garbage, "the damaged file is kept as it was")
        // The fresh store works.
        let id = try socket.send(#"{"n":1}"#)
        XCTAssertEqual(socket.pending().map { $0.id }, [id])
    }

    /// An app that reads `messages` only learns of the recovery too: it is thrown.
    func testMessagesThrowsTheRecoveryOfADamagedStore() async throws {
        let directory = try temporaryDirectory("damaged-messages")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = StoreConfig(directory: directory)
        XCTAssertTrue(FileManager.default.createFile(atPath: store.file.path, contents: Data(repeating: 0x5A, count: 4_096)))

        var options = quickOptions("ws://127.0.0.1:1/ws")
        options.store = store
        let socket = try Socket(config: options)
        defer { socket.close() }
        let read = try await Pending { await drain(socket.messages) }.value(within: 5)
        XCTAssertEqual(kind(read?.error), .storeRecovered, "messages did not throw the recovery: \(String(describing: read))")
        let message = "\(read?.error.map { "\($0)" } ?? "")"
        XCTAssertTrue(message.contains("damaged") && message.contains("moved to"), message)
    }

    /// A store written by a newer steadyws is refused with `.storeNewerFormat`, and left alone:
    /// not moved aside, its version unchanged, still refused the next time.
    func testAStoreFromANewerVersionIsRefused() throws {
        let directory = try temporaryDirectory("newer")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = StoreConfig(directory: directory)
        XCTAssertTrue(FileManager.default.createFile(atPath: store.file.path, contents: futureStoreFile()))
        var options = quickOptions("ws://127.0.0.1:1/ws")
        options.store = store
        for _ in 0..<2 {
            XCTAssertThrowsError(try Socket(config: options)) { error in
                XCTAssertEqual(kind(error), .storeNewerFormat, "\(error)")
                let message = (error as? SteadyWSError)?.message ?? ""
                XCTAssertFalse(message.isEmpty)
            }
        }
        let kept = try XCTUnwrap(FileManager.default.contents(atPath: store.file.path))
        XCTAssertEqual(Array(kept.prefix(64).suffix(4)), [0, 0, 0, 99], "user_version")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        XCTAssertFalse(names.contains { $0.contains("damaged") }, "\(names)")
    }

    /// `send_with_ttl` with a store: a message whose time ran out while the app was not running is
    /// reported at the next start as `.sendFailed(.expired)`, not sent, and not listed.
    func testATtlThatRanOutWhileTheAppWasDeadFailsAtStart() async throws {
        let directory = try temporaryDirectory("ttl")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = "ws://127.0.0.1:1/ws"
        let first = try Socket(config: durableOptions(url, store: directory))
        let expiring = try first.send(#"{"n":1}"#, ttl: 0.3)
        let lasting = try first.send(#"{"n":2}"#)
        first.close()
        try await pause(0.5)

        let second = try Socket(config: durableOptions(url, store: directory))
        defer { second.close() }
        XCTAssertEqual(second.pending().map { $0.id }, [lasting])
        let events = await collect(second.events, within: 5) { events in
            events.contains { if case .sendFailed = $0 { return true } else { return false } }
        }
        let failures = events.compactMap { event -> (String, SendFailureKind)? in
            if case let .sendFailed(id, reason, _, _) = event {
                return (id, reason)
            }
            return nil
        }
        XCTAssertEqual(failures.first?.0, expiring, "\(events)")
        XCTAssertEqual(failures.first?.1, .expired, "\(events)")
    }

    // MARK: - reading with a store

    /// With a store the stream takes one event per native call: each take commits the message
    /// before it, so `stats.messagesIn` follows the consumer message by message (a batch of 256
    /// would count all five at the first), and nothing comes flagged `redelivered`.
    func testWithAStoreTheStreamIsTakenOneEventAtATime() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let directory = try temporaryDirectory("one-at-a-time")
        defer { try? FileManager.default.removeItem(at: directory) }
        let ids = try await publish(server.url, count: 5)
        var options = durableOptions(server.url, store: directory)
        options.resumeLastSeq = 0   // the whole stream
        let socket = try Socket(config: options)
        defer { socket.close() }
        socket.connect()
        var taken: [ReceivedMessage] = []
        for try await message in socket.messages {
            taken.append(message)
            XCTAssertEqual(socket.stats.messagesIn, UInt64(taken.count), "after \(taken.count) taken")
            if taken.count == ids.count {
                break
            }
        }
        XCTAssertEqual(taken.map { $0.id }, ids.map { Optional($0) })
        XCTAssertFalse(taken.contains { $0.redelivered })
    }

    /// A clean restart: what the app took before `close()` is committed; the next socket on the
    /// store resumes after it, delivering only what was published since, none of it flagged.
    func testAfterACleanRestartReadingResumesAfterWhatWasTaken() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let directory = try temporaryDirectory("resume")
        defer { try? FileManager.default.removeItem(at: directory) }
        let earlier = try await publish(server.url, count: 10)
        var options = durableOptions(server.url, store: directory)
        options.resumeLastSeq = 0
        let first = try Socket(config: options)
        first.connect()
        let read = await collect(first.messages, within: 15) { $0.count >= earlier.count }
        XCTAssertEqual(read.map { $0.id }, earlier.map { Optional($0) })
        first.close()

        let later = try await publish(server.url, count: 5)
        let second = try Socket(config: durableOptions(server.url, store: directory))
        defer { second.close() }
        second.connect()
        let resumed = await collect(second.messages, within: 15) { $0.count >= later.count }
        XCTAssertEqual(resumed.map { $0.id }, later.map { Optional($0) })
        XCTAssertFalse(resumed.contains { $0.redelivered })
        let more = await collect(second.messages, within: 0.5) { _ in false }
        XCTAssertEqual(more.map { $0.id }, [], "nothing again")
    }

    // MARK: - options

    func testStoreOptionsSetTheThreeGeneratedFields() {
        var options = SocketConfig(url: "ws://127.0.0.1:1/ws")
        XCTAssertNil(options.store)
        XCTAssertNil(options.storeDirectory)
        let directory = URL(fileURLWithPath: "/tmp/steadyws-store", isDirectory: true)
        options.store = StoreConfig(directory: directory, name: "chat", syncEveryCommit: true)
        XCTAssertEqual(options.storeDirectory, "/tmp/steadyws-store")
        XCTAssertEqual(options.storeName, "chat")
        XCTAssertTrue(options.storeSyncEveryCommit)
        XCTAssertEqual(options.store?.name, "chat")
        XCTAssertEqual(options.store?.file.lastPathComponent, "chat.steadyws")
        options.store = nil
        XCTAssertNil(options.storeDirectory)
        XCTAssertEqual(options.storeName, StoreConfig.defaultName)
        XCTAssertFalse(options.storeSyncEveryCommit)
        // Settings left out are absent here: the native socket applies its own defaults.
        XCTAssertNil(options.outboxMaxMessages)
        XCTAssertNil(options.outboxMaxBytes)
    }
}

/// Not a test of its own: the app that the SIGKILL tests run in a child process (`ChildRun`),
/// selected by name with `STEADYWS_CHILD_ROLE` set. Skipped in an ordinary run.
///
///     send: sends {"n": FIRST} … {"n": COUNT-1}, writing "sent <id> <n>" once each send returned
///           (the message is on disk then); then waits until pending() is empty, writes "all acked"
///     read: writes "open" once connected, then takes messages one at a time, writing
///           "got <id> <redelivered 0|1>" for each; ends after the message {"n": LAST}
final class DurableChild: XCTestCase {
    func testChildRole() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let role = environment["STEADYWS_CHILD_ROLE"] else {
            throw XCTSkip("the app of the SIGKILL tests: runs only in their child process")
        }
        func setting(_ name: String) throws -> String {
            guard let value = environment["STEADYWS_CHILD_\(name)"] else {
                throw SupportError(description: "STEADYWS_CHILD_\(name) is not set")
            }
            return value
        }
        let output = try ChildOutput(path: try setting("OUTPUT"))
        let url = try setting("URL")
        let store = URL(fileURLWithPath: try setting("STORE"), isDirectory: true)
        switch role {
        case "send":
            let first = try XCTUnwrap(Int(try setting("FIRST")))
            let count = try XCTUnwrap(Int(try setting("COUNT")))
            try await runSender(url: url, store: store, first: first, count: count, output: output)
        case "read":
            let last = try XCTUnwrap(Int(try setting("LAST")))
            try await runReader(url: url, store: store, last: last, output: output)
        default:
            XCTFail("unknown role \(role)")
        }
    }

    private func runSender(url: String, store: URL, first: Int, count: Int, output: ChildOutput) async throws {
        let socket = try Socket(config: durableOptions(url, store: store))
        // Acks come with the events: this task reads them (the socket's one consumer).
        let drain = Task {
            for try await _ in socket.events {}
        }
        socket.connect()
        for n in first..<max(first, count) {
            let id = try socket.send("{\"n\":\(n)}")
            output.say("sent \(id) \(n)")   // on disk now
            try await pause(0.002)           // an app producing messages over time
        }
        let deadline = Date().addingTimeInterval(20)
        while true {
            let left = socket.pending()
            if left.isEmpty {
                break
            }
            if Date() > deadline {
                throw SupportError(description: "still pending after 20 s: \(left.map { $0.id })")
            }
            try await pause(0.02)
        }
        socket.close()
        drain.cancel()
        output.say("all acked")
    }

    private func runReader(url: String, store: URL, last: Int, output: ChildOutput) async throws {
        let socket = try Socket(config: durableOptions(url, store: store))
        defer { socket.close() }
        socket.connect()
        try await socket.waitOpen(timeout: 10)
        output.say("open")
        for try await message in socket.messages {
            output.say("got \(message.id ?? "-") \(message.redelivered ? 1 : 0)")
            if message.json.flatMap(numberField) == last {
                return
            }
            try await pause(0.01)   // processing it: a kill now finds it in hand
        }
        XCTFail("the stream ended before the message n=\(last)")
    }
}
