// The binding tests against the reference server binary (`STEADYWS_SERVER`, see Support.swift).
//
// `testScenario1…7` are the host-layer scenarios shared by every language (bindings/README.md;
// the same scenarios, with the same assertions, run in pytest and JUnit). The other tests cover
// what is Swift's own: the API shape, errors, the one-reader rule, cancelled waits, leaks across
// the FFI, the generated API alone, the lifecycle hint.

import Foundation
import XCTest
@testable import SteadyWS

/// The JSON the tests send, decoded to compare content rather than bytes.
private struct Note: Codable, Equatable {
    let text: String
    let n: Int
}

/// How a call started with `started` ended.
private enum Outcome: Sendable {
    case returned
    case threw(Error)
}

/// Start `body` on a task of its own at once; await its outcome later, with a time limit.
private func started(_ body: @escaping @Sendable () async throws -> Void) -> Pending<Outcome> {
    Pending {
        do {
            try await body()
            return .returned
        } catch {
            return .threw(error)
        }
    }
}

/// The `SteadyWSError` an outcome failed with; nil when it returned, failed otherwise or is
/// still pending.
private func steadyWSError(_ outcome: Outcome?) -> SteadyWSError? {
    if case let .threw(error)? = outcome {
        return error as? SteadyWSError
    }
    return nil
}

/// The first two events of every socket: `connect()` asked, then the connection opened.
private let connectingByTheApp = SocketEvent.stateChanged(state: .connecting(attempt: 1), cause: .app)
private let openedEvent = SocketEvent.stateChanged(state: .open, cause: .opened)
/// The last event of every socket: `close()` asked.
private let closedByTheApp = SocketEvent.stateChanged(state: .closed, cause: .app)

/// The JSON content of a message, decoded; nil when it is not a `Note`.
private func note(of message: ReceivedMessage) -> Note? {
    guard let json = message.json else {
        return nil
    }
    return try? JSONDecoder().decode(Note.self, from: Data(json.utf8))
}

/// Store `count` messages `{"text":"published","n":i,"pad":"x…"}` in the server's stream from a
/// socket of its own (in windows of 250, which its outbox holds), and return their ids once every
/// one is acknowledged. The publisher drains its own copy of the stream without keeping it, and
/// is closed before this returns.
func publish(_ url: String, count: Int, pad: Int = 0) async throws -> [String] {
    let publisher = try Socket(config: quickOptions(url))
    defer { publisher.close() }
    let drain = Task {
        for try await _ in publisher.events {}
    }
    defer { drain.cancel() }
    publisher.connect()
    try await publisher.waitOpen(timeout: 10)
    let padding = String(repeating: "x", count: pad)
    var ids: [String] = []
    while ids.count < count {
        var window: [String] = []
        for _ in 0..<min(250, count - ids.count) {
            let n = ids.count + window.count
            window.append(try publisher.send("{\"text\":\"published\",\"n\":\(n),\"pad\":\"\(padding)\"}"))
        }
        for id in window {
            try await publisher.waitAcked(id, timeout: 30)
        }
        ids.append(contentsOf: window)
    }
    return ids
}

/// A `ws://` URL on a port nothing listens on (it was listening a moment ago).
func unusedURL() throws -> String {
    "ws://127.0.0.1:\(try unusedPort())/ws"
}

/// A port nothing listens on (the reference server listened on it a moment ago).
func unusedPort() throws -> Int {
    let server = try ReferenceServer.start()
    server.sigkill()
    return server.port
}

/// True for a `stateChanged` event to a `.reconnecting` state.
private func isReconnecting(_ state: SocketState?) -> Bool {
    if case .reconnecting? = state {
        return true
    }
    return false
}

final class SteadyWSTests: XCTestCase {
    // MARK: - Scenario 1: a late subscriber gets everything

    func testScenario1LateSubscriberGetsEverything() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let count = 50
        let late = try Socket(config: quickOptions(server.url))
        defer { late.close() }
        late.connect()
        try await late.waitOpen(timeout: 5)   // waiting reads nothing from the stream
        let ids = try await publish(server.url, count: count)

        // Every message has reached the socket…
        let arrived = try await eventually(timeout: 5) { late.stats.messagesReceived >= UInt64(count) }
        XCTAssertTrue(arrived, "received \(late.stats.messagesReceived) of \(count)")
        let before = late.stats
        XCTAssertEqual(before.messagesReceived, UInt64(count))
        // …but none was taken: nothing is committed, the cursor has not moved.
        XCTAssertEqual(before.messagesIn, 0)
        XCTAssertEqual(before.lastSeq, 0, "the position of hello's empty stream, as in pytest")

        // Reading starts afterwards: the state changes from before, then every message in order.
        let seen = await collect(late.events, within: 15) { events in
            events.last.flatMap { ReceivedMessage($0)?.id } == ids.last
        }
        XCTAssertEqual(Array(seen.prefix(2)), [connectingByTheApp, openedEvent], "\(seen.prefix(4))")
        let messages = seen.compactMap { ReceivedMessage($0) }
        XCTAssertEqual(messages.count, count, "a late subscriber got \(messages.count) of \(count)")
        XCTAssertEqual(messages.map { $0.seq }, (1...UInt64(count)).map { Optional($0) }, "lost, duplicated or reordered")
        XCTAssertEqual(messages.map { $0.id }, ids.map { Optional($0) })
        XCTAssertEqual(messages.map { note(of: $0)?.n }, (0..<count).map { Optional($0) })
        for message in messages {
            XCTAssertEqual(message.cursor, ResumeCursor(lastSeq: message.seq, lastTs: message.ts))
        }
        // Taken now (`events` takes up to 256 per native call: the commit is per batch, not per
        // message as with Python's `next_event`): the stats count what the app took.
        let after = late.stats
        XCTAssertEqual(after.messagesIn, UInt64(count))
        XCTAssertEqual(after.lastSeq, messages.last?.seq)
        XCTAssertEqual(after.lastTs, messages.last?.ts)
        // Nothing twice.
        let more = await collect(late.events, within: 0.3) { _ in false }
        XCTAssertEqual(more, [], "after every message")
    }

    // MARK: - Scenario 2: a slow consumer is pushed back, not dropped

    func testScenario2SlowConsumerIsPushedBackNotDropped() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let count = 5_000
        let pad = 2_048
        let inbox: UInt32 = 200
        var options = quickOptions(server.url)
        options.inboxMaxEvents = inbox
        let slow = try Socket(config: options)
        defer { slow.close() }
        slow.connect()
        try await slow.waitOpen(timeout: 5)
        let memoryBefore = residentBytes()

        // The app takes nothing while M messages of 2 KiB are published to it.
        let started = Date()
        let ids = try await publish(server.url, count: count, pad: pad)
        let publishedIn = Date().timeIntervalSince(started)
        try await pause(3)   // still not consuming: time passes, heartbeats (500 ms) are due
        let paused = slow.stats
        let memoryPaused = residentBytes()
        XCTAssertEqual(slow.state, .open, "the paused reader's connection was torn down")
        XCTAssertEqual(paused.messagesIn, 0)
        // Backpressure: the socket stopped reading at the inbox bound; the rest waits in TCP
        // buffers and at the server.
        XCTAssertLessThan(paused.messagesReceived, UInt64(count), "\(paused)")
        XCTAssertLessThanOrEqual(paused.messagesReceived, UInt64(inbox) + 64, "\(paused)")

        // The app reads again: every message exactly once, in order, and no state change.
        let seen = await collect(slow.events, within: 90) { events in
            events.last.flatMap { ReceivedMessage($0)?.id } == ids.last
        }
        let messages = seen.compactMap { ReceivedMessage($0) }
        let more = await collect(slow.events, within: 0.5) { _ in false }
        XCTAssertEqual(more, [], "nothing more: no duplicate")
        let stats = slow.stats
        print(
            "[slow consumer] published=\(count) x \(pad) B in \(String(format: "%.1f", publishedIn)) s, "
                + "received while paused=\(paused.messagesReceived) (inbox \(inbox)), "
                + "delivered=\(messages.count), memory growth while paused="
                + "\((memoryPaused &- memoryBefore) / 1_024) KiB, "
                + "peak memory of the test process=\(peakResidentBytes() / 1_048_576) MiB"
        )
        // The state never left Open: the only state changes are the way in.
        XCTAssertEqual(seen.filter { $0.stateChange != nil }, [connectingByTheApp, openedEvent])
        XCTAssertEqual(stats.reconnects, 0)
        XCTAssertEqual(slow.state, .open)
        // Exactly once, in order.
        XCTAssertEqual(messages.map { $0.seq }, (1...UInt64(count)).map { Optional($0) })
        XCTAssertEqual(messages.map { note(of: $0)?.n }, (0..<count).map { Optional($0) })
        XCTAssertEqual(stats.messagesIn, UInt64(count))
        XCTAssertEqual(stats.lastSeq, UInt64(count))
        // Bounded: the 10 MiB published did not pile up in this process. (The publisher runs in
        // this process too, unlike pytest's; its windows of 250 messages stay well below this.)
        if memoryBefore > 0 {
            XCTAssertLessThan(memoryPaused &- memoryBefore, 8 * 1_048_576, "memory grew while paused")
        }
    }

    // MARK: - Scenario 3: waiting keeps events

    func testScenario3WaitingKeepsEvents() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let socket = try Socket(config: quickOptions(server.url))
        defer { socket.close() }
        socket.connect()
        try await socket.waitOpen(timeout: 5)
        try await socket.waitOpen(timeout: 5)   // open already: at once
        let id = try await socket.sendAndWait(#"{"text":"kept","n":3}"#, timeout: 5)
        try await socket.waitAcked(id, timeout: 5)   // remembered: at once

        // The waits observed on the side: the stream holds the state changes, the ack and the
        // message, in order.
        let seen = await collect(socket.events, within: 5) { events in
            events.contains { ReceivedMessage($0)?.id == id }
        }
        XCTAssertEqual(seen.count, 4, "\(seen)")
        XCTAssertEqual(Array(seen.prefix(3)), [connectingByTheApp, openedEvent, .acked(id: id)], "\(seen)")
        let message = seen.count == 4 ? ReceivedMessage(seen[3]) : nil
        XCTAssertEqual(message?.id, id)
        XCTAssertEqual(message.flatMap { note(of: $0) }, Note(text: "kept", n: 3))
    }

    // MARK: - Scenario 4: send returns at once, sendAndWait after the ack

    func testScenario4SendReturnsAtOnceAndSendAndWaitAfterTheAck() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        // Not connected at all: send still returns the id at once (queued).
        let socket = try Socket(config: quickOptions(server.url))
        defer { socket.close() }
        let started = Date()
        let first = try socket.send(#"{"text":"first","n":1}"#)
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.1, "send waited")
        XCTAssertNotNil(UUID(uuidString: first), "a UUID: \(first)")
        XCTAssertEqual(socket.stats.outboxLen, 1)
        XCTAssertEqual(socket.stats.messagesAcked, 0)
        socket.connect()
        try await socket.waitAcked(first, timeout: 5)
        XCTAssertEqual(socket.stats.outboxLen, 0)

        // sendAndWait returns only once the server acknowledged the message.
        let second = try await socket.sendAndWait(#"{"text":"second","n":2}"#, timeout: 5)
        let stats = socket.stats
        XCTAssertEqual(stats.messagesAcked, 2)
        XCTAssertEqual(stats.outboxLen, 0)
        let seen = await collect(socket.events, within: 5) { events in
            events.last?.ackedId == second
        }
        XCTAssertEqual(seen.compactMap { $0.ackedId }, [first, second])

        // A server that is not there: sendAndWait times out, the message stays queued.
        let down = try Socket(config: quickOptions(try unusedURL()))
        defer { down.close() }
        down.connect()
        let waitStarted = Date()
        let error = await thrownError { try await down.sendAndWait(#"{"text":"third","n":3}"#, timeout: 0.3) }
        let waited = Date().timeIntervalSince(waitStarted)
        guard kind(error) == .timedOut, let id = (error as? SteadyWSError)?.messageId else {
            XCTFail("expected kind .timedOut with the id, got \(String(describing: error))")
            return
        }
        XCTAssertGreaterThanOrEqual(waited, 0.25)
        XCTAssertLessThan(waited, 3)
        XCTAssertNotNil(UUID(uuidString: id))
        XCTAssertTrue("\(error!)".contains("still sent"), "\(error!)")
        XCTAssertEqual(down.stats.outboxLen, 1)
        let again = await thrownError { try await down.waitAcked(id, timeout: 0.1) }
        XCTAssertEqual(kind(again), .timedOut)
        XCTAssertEqual((again as? SteadyWSError)?.messageId, id)
    }

    // MARK: - Scenario 5: close semantics

    func testScenario5CloseFailsEveryWaitAtOnceAndEndsTheStream() async throws {
        // Nothing listens: nothing can open or be acknowledged.
        let socket = try Socket(config: quickOptions(try unusedURL()))
        socket.connect()
        let queued = try socket.send(#"{"text":"never acked","n":0}"#)
        let consumer = Pending { await drain(socket.events).items }
        // No time limits: only close() can end these.
        let openWait = started { try await socket.waitOpen() }
        let sendWait = started { try await socket.sendAndWait(#"{"text":"never either","n":1}"#) }
        let ackWait = started { try await socket.waitAcked(queued) }
        try await pause(0.5)
        XCTAssertFalse(openWait.isDone || sendWait.isDone || ackWait.isDone || consumer.isDone)

        let closing = Date()
        socket.close()
        XCTAssertEqual(socket.state, .closed)   // at once
        let opened = try await openWait.value(within: 2)
        let sent = try await sendWait.value(within: 2)
        let acked = try await ackWait.value(within: 2)
        let seen = try await consumer.value(within: 2)   // the stream ended by itself
        XCTAssertLessThan(Date().timeIntervalSince(closing), 2)
        XCTAssertEqual(steadyWSError(opened)?.kind, .closed, "waitOpen: \(String(describing: opened))")
        guard steadyWSError(sent)?.kind == .closed, let sentId = steadyWSError(sent)?.messageId else {
            XCTFail("sendAndWait: expected kind .closed with the id, got \(String(describing: sent))")
            return
        }
        XCTAssertNotEqual(sentId, queued)
        XCTAssertEqual(steadyWSError(acked)?.kind, .closed, "waitAcked: \(String(describing: acked))")
        XCTAssertEqual(steadyWSError(acked)?.messageId, queued)
        // The last event is the change to Closed, caused by the app.
        XCTAssertNotNil(seen, "events still open 2 s after close()")
        XCTAssertEqual(seen?.last, closedByTheApp, "\(seen ?? [])")

        // After close: every wait and command answers at once.
        let again = await thrownError { try await socket.waitOpen() }
        XCTAssertEqual(kind(again), .closed)
        let sendAgain = await thrownError { try await socket.sendAndWait(#"{"text":"late","n":2}"#) }
        XCTAssertEqual(kind(sendAgain), .closed)
        XCTAssertThrowsError(try socket.send(#"{"text":"late","n":3}"#)) { error in
            XCTAssertEqual(kind(error), .closed)
        }
        let ackAgain = await thrownError { try await socket.waitAcked(queued) }
        XCTAssertEqual(kind(ackAgain), .closed)
        XCTAssertEqual((ackAgain as? SteadyWSError)?.messageId, queued)
        let after = await collect(socket.events, within: 1) { _ in false }
        XCTAssertEqual(after, [], "a stream started after close() ends at once")
        XCTAssertEqual(socket.state, .closed)
        socket.close()   // closing twice is harmless
    }

    /// Scenario 5, with an open socket: a consumer waiting for the next event sees the change to
    /// Closed, then its stream ends.
    func testCloseOfAnOpenSocket() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let socket = try Socket(config: quickOptions(server.url))
        socket.connect()
        try await socket.waitOpen(timeout: 5)
        _ = await collect(socket.events, within: 5) { $0.last == openedEvent }
        let reader = Pending { await drain(socket.events).items }
        try await pause(0.1)
        XCTAssertFalse(reader.isDone)
        socket.close()
        XCTAssertEqual(socket.state, .closed)
        let seen = try await reader.value(within: 2)
        XCTAssertEqual(seen, [closedByTheApp])
        let error = await thrownError { try await socket.waitOpen(timeout: 5) }
        XCTAssertEqual(kind(error), .closed)
    }

    // MARK: - Scenario 6: states carry their cause

    func testScenario6StatesCarryTheirCause() async throws {
        // A port nobody listens on: Reconnecting caused by AttemptFailed, kind .refused.
        let url = try unusedURL()
        let refused = try Socket(config: quickOptions(url))
        defer { refused.close() }
        let refusedEvents = Recorder(refused)
        refused.connect()
        let retry = try await refusedEvents.waitFor("the first retry") { event -> SocketEvent? in
            isReconnecting(event.stateChange) ? event : nil
        }
        XCTAssertEqual(refusedEvents.events.first, connectingByTheApp)
        guard case let .attemptFailed(problem)? = retry.cause else {
            XCTFail("expected cause .attemptFailed, got \(retry)")
            return
        }
        XCTAssertEqual(problem.kind, .refused, problem.message)
        let authority = url.components(separatedBy: "://").last?.components(separatedBy: "/").first ?? url
        XCTAssertTrue(problem.message.contains(authority), problem.message)
        refused.close()

        // A live server, then killed under the open connection, then back.
        let first = try ReferenceServer.start()
        var server: ReferenceServer? = first
        defer { server?.sigkill() }
        let socket = try Socket(config: quickOptions(first.url))
        defer { socket.close() }
        let recorder = Recorder(socket)
        socket.connect()
        try await recorder.waitForState(.open)
        XCTAssertEqual(Array(recorder.events.prefix(2)), [connectingByTheApp, openedEvent])
        let mark = recorder.count
        first.sigkill()
        let dropped = try await recorder.waitFor("the change after the drop", from: mark) { event -> SocketEvent? in
            event.stateChange == nil ? nil : event
        }
        XCTAssertTrue(isReconnecting(dropped.stateChange), "\(dropped)")
        guard case let .connectionDropped(lost)? = dropped.cause else {
            XCTFail("expected cause .connectionDropped, got \(dropped)")
            return
        }
        XCTAssertFalse(lost.message.isEmpty)
        // While it is down, attempts fail (and say so); then it comes back.
        server = try first.restart()
        try await recorder.waitForState(.open, from: mark, timeout: 10)
        let sinceDrop = Array(recorder.changes.dropFirst(3))   // after Connecting, Open, the drop
        for change in sinceDrop {
            switch change.cause {
            case .retryDue, .attemptFailed, .opened:
                continue
            default:
                XCTFail("unexpected cause while down: \(change)")
            }
        }
        XCTAssertEqual(sinceDrop.last?.cause, .opened)

        // close(): Closed, caused by the app.
        socket.close()
        try await recorder.waitForState(.closed)
        XCTAssertEqual(recorder.events.last, closedByTheApp)
    }

    // MARK: - Scenario 9: one reader

    func testScenario9OneReaderAndACancelledReaderFreesTheSocket() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let socket = try Socket(config: quickOptions(server.url))
        defer { socket.close() }
        socket.connect()
        try await socket.waitOpen(timeout: 10)
        _ = await collect(socket.events, within: 5) { $0.last == openedEvent }
        // The first reader waits for events; a second read is refused at once by the native
        // socket.
        let first = Task { await drain(socket.events) }
        let refused = try await eventually(timeout: 5) {
            socket.waits.inProgress == 1
        }
        XCTAssertTrue(refused, "the first reader never started waiting")
        let second = await drain(socket.events)
        XCTAssertEqual(kind(second.error), .alreadyReading, "\(String(describing: second.error))")
        XCTAssertEqual(second.items, [])
        // Once the first reader is cancelled, a new one starts at once and gets the next message.
        first.cancel()
        let ended = try await Pending { await first.value }.value(within: 5)
        XCTAssertNotNil(ended, "the cancelled reader did not end")
        XCTAssertNil(ended?.error)
        let next = Pending { await collect(socket.events, within: 10) { ReceivedMessage($0.last ?? .acked(id: "")) != nil } }
        let ids = try await publish(server.url, count: 1)
        let seen = try await next.value(within: 15) ?? []
        XCTAssertEqual(seen.compactMap { ReceivedMessage($0)?.id }, ids, "\(seen)")
    }

    // MARK: - Scenario 10: one kind per situation

    func testScenario10OneKindPerSituation() async throws {
        XCTAssertThrowsError(try Socket(url: "http://127.0.0.1:9/ws")) { error in
            XCTAssertEqual(kind(error), .invalidUrl, "\(error)")
        }
        let socket = try Socket(config: quickOptions(try unusedURL()))
        XCTAssertThrowsError(try socket.send("not json")) { error in
            XCTAssertEqual(kind(error), .notJson, "\(error)")
        }
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        XCTAssertThrowsError(try socket.send(deep)) { error in
            XCTAssertEqual(kind(error), .notJson, "\(error)")
            XCTAssertTrue("\(error)".contains("nested deeper than 64 levels"), "\(error)")
        }
        XCTAssertEqual(socket.pending().map { $0.id }, [])
        let unknown = await thrownError { try await socket.waitAcked("never-sent", timeout: 1) }
        XCTAssertEqual(kind(unknown), .unknownMessage, "\(String(describing: unknown))")
        socket.close()
        let closed = await thrownError { try await socket.waitOpen(timeout: 1) }
        XCTAssertEqual(kind(closed), .closed, "\(String(describing: closed))")
    }

    // MARK: - Scenario 12: a silent server is noticed while sending

    func testScenario12ASilentServerIsNoticedWhileSending() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        var options = quickOptions(server.url)
        // The idle heartbeat alone would take 15 s: only unanswered writes can notice in time.
        options.heartbeatIntervalMs = 10_000
        options.heartbeatTimeoutMs = 5_000
        options.ackProbeAfterMs = 500
        options.probeTimeoutMs = 500
        let socket = try Socket(config: options)
        defer { socket.close() }
        let recorder = Recorder(socket)
        socket.connect()
        try await recorder.waitForState(.open)
        var sent = [try socket.send(#"{"n":0}"#)]
        try await socket.waitAcked(sent[0], timeout: 10)
        let mark = recorder.count
        let started = Date()
        var left: SocketEvent?
        do {
            server.freeze()
            defer { server.thaw() }
            while left == nil, Date().timeIntervalSince(started) < 5 {
                sent.append(try socket.send(#"{"n":\#(sent.count)}"#))
                try await pause(0.05)
                left = recorder.events.dropFirst(mark).first { $0.stateChange != nil }
            }
        }
        let noticed = Date().timeIntervalSince(started)
        guard let left, case let .stateChanged(_, cause) = left, case .connectionDropped = cause else {
            XCTFail("expected a change caused by .connectionDropped, got \(String(describing: left))")
            return
        }
        print("scenario 12: noticed after \(noticed) s")
        // Under 2 s: the default wait (at least 2 s) would not pass, the configured 500 ms does.
        XCTAssertLessThan(noticed, 2, "noticed after \(noticed) s")
        for id in sent {
            try await socket.waitAcked(id, timeout: 20)
        }
        XCTAssertEqual(socket.pending().map { $0.id }, [])
    }

    // MARK: - Scenario 11: sendAndWait with a ttl

    func testScenario11SendAndWaitWithATtl() async throws {
        let socket = try Socket(config: quickOptions(try unusedURL()))
        defer { socket.close() }
        socket.connect()
        let started = Date()
        let expired = await thrownError { try await socket.sendAndWait(#"{"n":1}"#, ttl: 0.3, timeout: 10) }
        let failure = expired as? SteadyWSError
        XCTAssertEqual(failure?.kind, .sendFailed, "\(String(describing: expired))")
        XCTAssertEqual(failure?.sendFailure, .expired)
        XCTAssertNotNil(failure?.messageId)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "the ttl, not the timeout, ended it")

        let timedOut = await thrownError { try await socket.sendAndWait(#"{"n":2}"#, timeout: 0.3) }
        let timeout = timedOut as? SteadyWSError
        XCTAssertEqual(timeout?.kind, .timedOut, "\(String(describing: timedOut))")
        XCTAssertEqual(socket.pending().map { $0.id }, [timeout?.messageId].compactMap { $0 }, "still pending")
    }

    // MARK: - Scenario 7: the server restarted mid-stream

    func testScenario7ServerRestartedMidStreamLosesNothing() async throws {
        let dataDir = try temporaryDirectory("kill")
        defer { try? FileManager.default.removeItem(at: dataDir) }
        var server: ReferenceServer? = try ReferenceServer.start(arguments: ["--data-dir", dataDir.path])
        defer { server?.sigkill() }
        let url = try XCTUnwrap(server?.url)

        let alice = try Socket(config: quickOptions(url))
        let bob = try Socket(config: quickOptions(url))
        defer {
            alice.close()
            bob.close()
        }
        let aliceEvents = Recorder(alice)
        let bobEvents = Recorder(bob)
        alice.connect()
        bob.connect()
        try await alice.waitOpen(timeout: 15)
        try await bob.waitOpen(timeout: 15)

        let rounds = 120
        let total = 2 * rounds
        var sent: [String] = []
        var killed: ReferenceServer?
        for i in 0..<rounds {
            // Alice writes up; Bob's messages come down to Alice through the server's stream.
            sent.append(try alice.send("{\"from\":\"alice\",\"n\":\(i)}"))
            sent.append(try bob.send("{\"from\":\"bob\",\"n\":\(i)}"))
            if i == 50 {
                server?.sigkill()
                killed = server
                server = nil
            }
            if i == 70 {
                server = try killed?.restart()
            }
            try await pause(0.015)
        }
        let settled = try await eventually(timeout: 30) {
            aliceEvents.messages.count >= total && aliceEvents.acked.count + bobEvents.acked.count >= total
        }
        XCTAssertTrue(settled, "alice received \(aliceEvents.messages.count), acks \(aliceEvents.acked.count)+\(bobEvents.acked.count) of \(total)")
        try await pause(0.5)   // late duplicates would show up now

        // Up: every message acked exactly once.
        let acked = aliceEvents.acked + bobEvents.acked
        XCTAssertEqual(acked.count, total, "acks: alice \(aliceEvents.acked.count) bob \(bobEvents.acked.count)")
        XCTAssertEqual(Set(acked).count, acked.count, "an id was acked twice")
        XCTAssertEqual(Set(acked), Set(sent))

        // Down: Alice saw the whole stream, once each, in seq order.
        let received = aliceEvents.messages
        let seqs = received.compactMap { $0.seq }
        XCTAssertEqual(seqs, Array(1...UInt64(total)), "lost, duplicated or reordered")
        let ids = received.compactMap { $0.id }
        let lost = Set(sent).subtracting(ids).count
        let duplicated = ids.count - Set(ids).count
        print("restart scenario: sent=\(sent.count) received=\(ids.count) lost=\(lost) duplicated=\(duplicated)")
        XCTAssertEqual(lost, 0, "lost")
        XCTAssertEqual(duplicated, 0, "duplicated")
        XCTAssertEqual(Set(ids), Set(sent), "the server stored each message exactly once")
        XCTAssertGreaterThanOrEqual(alice.stats.reconnects, 1)
        // The drop and the refused attempts said why.
        XCTAssertTrue(
            aliceEvents.changes.contains { isReconnecting($0.state) && $0.cause.problem != nil },
            "\(aliceEvents.changes)"
        )
    }

    // MARK: - connect, send, ack, receive

    func testConnectSendAckAndReceive() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let alice = try Socket(config: quickOptions(server.url))
        let bob = try Socket(config: quickOptions(server.url))
        defer {
            alice.close()
            bob.close()
        }
        let aliceEvents = Recorder(alice)
        alice.connect()
        bob.connect()
        try await alice.waitOpen(timeout: 15)
        try await bob.waitOpen(timeout: 15)
        XCTAssertTrue(alice.state.isOpen)

        let json = #"{"text":"hello from swift","n":1}"#
        let id = try await alice.sendAndWait(json, timeout: 15)
        XCTAssertFalse(id.isEmpty)
        try await aliceEvents.waitFor("ack of \(id)") { event -> Bool? in
            event.ackedId == id ? true : nil
        }

        // The server fans the message out to every client, the sender included; Bob reads
        // `messages`, which carries the resume position.
        let bobMessages = await collect(bob.messages, within: 15) { messages in
            messages.contains { $0.id == id }
        }
        try await aliceEvents.waitFor("alice receiving \(id)") { event -> Bool? in
            ReceivedMessage(event)?.id == id ? true : nil
        }
        let mine = aliceEvents.messages.filter { $0.id == id }
        XCTAssertEqual(mine.count, 1, "alice: delivered once")
        let theirs = bobMessages.filter { $0.id == id }
        XCTAssertEqual(theirs.count, 1, "bob: delivered once")
        let decoder = JSONDecoder()
        for message in mine + theirs {
            let seq = try XCTUnwrap(message.seq, "envelope messages carry a seq")
            XCTAssertEqual(message.cursor.lastSeq, seq)
            let received = try XCTUnwrap(message.json, "expected JSON, got \(message.data)")
            XCTAssertEqual(
                try decoder.decode(Note.self, from: Data(received.utf8)),
                try decoder.decode(Note.self, from: Data(json.utf8))
            )
        }
        XCTAssertEqual(aliceEvents.acked.filter { $0 == id }.count, 1, "acked once")
    }

    // MARK: - state events

    func testStateEventsFollowConnectAndDisconnect() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let socket = try Socket(config: quickOptions(server.url))
        defer { socket.close() }
        let recorder = Recorder(socket)
        XCTAssertEqual(socket.state, .idle)

        socket.connect()
        try await recorder.waitForState(.open)
        socket.disconnect()
        try await recorder.waitForState(.closed)
        XCTAssertEqual(socket.state, .closed)

        let changes = recorder.changes
        let states = changes.map { $0.state }
        let connecting = states.firstIndex { state in
            if case .connecting = state {
                return true
            }
            return false
        }
        let opened = states.firstIndex(of: .open)
        let closing = states.firstIndex(of: .closing)
        let closed = states.firstIndex(of: .closed)
        XCTAssertNotNil(connecting, "\(states)")
        XCTAssertNotNil(closing, "\(states)")
        if let connecting, let opened, let closing, let closed {
            XCTAssertLessThan(connecting, opened, "\(states)")
            XCTAssertLessThan(opened, closing, "\(states)")
            XCTAssertLessThan(closing, closed, "\(states)")
            XCTAssertEqual(changes[connecting].cause, .app, "connect() asked")
            XCTAssertEqual(changes[opened].cause, .opened)
            XCTAssertEqual(changes[closing].cause, .app, "disconnect() asked")
        }
        // disconnect() is not close(): the socket connects again.
        socket.connect()
        let mark = recorder.count
        try await recorder.waitForState(.open, from: mark)
    }

    func testSocketStatePrintsAsASentenceAndCompares() {
        // Display, Eq and Hash come from Rust.
        XCTAssertEqual("\(SocketState.connecting(attempt: 2))", "connecting (attempt 2)")
        XCTAssertEqual(
            SocketState.reconnecting(attempt: 3, retryInMs: 400).description,
            "reconnecting (attempt 3 in 400 ms)"
        )
        XCTAssertEqual(SocketState.waitingForNetwork.description, "waiting for network")
        let failed = SocketState.failed(reason: "gave up after 5 attempts", retryable: true)
        XCTAssertEqual(failed.description, "gave up after 5 attempts")
        XCTAssertEqual(
            SocketState.reconnecting(attempt: 1, retryInMs: 100),
            .reconnecting(attempt: 1, retryInMs: 100)
        )
        XCTAssertNotEqual(SocketState.connecting(attempt: 1), .connecting(attempt: 2))
        XCTAssertNotEqual(SocketState.open, .closed)
        let states: Set<SocketState> = [
            .open, .open, .connecting(attempt: 1), .connecting(attempt: 1), .closed,
        ]
        XCTAssertEqual(states.count, 3)
        XCTAssertTrue(states.contains(.connecting(attempt: 1)))
    }

    // MARK: - errors

    func testHttpUrlThrowsInvalidUrlWithTheWsSuggestion() {
        XCTAssertThrowsError(try Socket(url: "http://127.0.0.1:8080/ws")) { error in
            XCTAssertEqual(kind(error), .invalidUrl, "\(error)")
            let message = (error as? SteadyWSError)?.message ?? ""
            XCTAssertTrue(message.contains("ws://127.0.0.1:8080/ws"), message)
            // The error prints as its message.
            XCTAssertEqual("\(error)", message)
            XCTAssertEqual(error.localizedDescription, message)
        }
        // The generated API throws the generated error.
        XCTAssertThrowsError(try NativeSocket(config: SocketConfig(url: "https://example.com/ws"))) { error in
            guard case let .Failure(.invalidUrl, message, _, _)? = error as? NativeError else {
                XCTFail("expected NativeError.Failure(.invalidUrl, …), got \(error)")
                return
            }
            XCTAssertTrue(message.contains("wss://example.com/ws"), message)
        }
    }

    func testSendingSomethingThatIsNotJsonThrowsInvalidNotJSON() throws {
        let socket = try Socket(config: quickOptions("ws://127.0.0.1:9/ws"))
        defer { socket.close() }
        XCTAssertThrowsError(try socket.send("not json")) { error in
            XCTAssertEqual(kind(error), .notJson, "\(error)")
        }
        XCTAssertEqual(socket.stats.outboxLen, 0, "nothing queued")
    }

    func testRefusedPortExpiresASendWithTtlAndTheFailureCarriesThePayload() async throws {
        let socket = try Socket(config: quickOptions(try unusedURL()))
        defer { socket.close() }
        let recorder = Recorder(socket)
        socket.connect()

        let payload = #"{"text":"late","n":4}"#
        let error = await thrownError { try await socket.sendAndWait(payload, ttl: 0.2, timeout: 10) }
        guard let failure = error as? SteadyWSError, failure.kind == .sendFailed, let id = failure.messageId else {
            XCTFail("expected kind .sendFailed with the id, got \(String(describing: error))")
            return
        }
        XCTAssertEqual(failure.sendFailure, .expired, failure.message)
        XCTAssertFalse(id.isEmpty)
        // The sendFailed event carries the same reason and the payload.
        let data = try await recorder.waitFor("SendFailed") { event -> MessageData? in
            if case let .sendFailed(failedId, failedReason, _, data) = event, failedId == id {
                XCTAssertEqual(failedReason, .expired)
                return data
            }
            return nil
        }
        guard case let .json(json) = data else {
            XCTFail("expected the JSON payload, got \(data)")
            return
        }
        let decoder = JSONDecoder()
        XCTAssertEqual(
            try decoder.decode(Note.self, from: Data(json.utf8)),
            try decoder.decode(Note.self, from: Data(payload.utf8))
        )
    }

    func testWaitOpenTimesOutAndAnUnknownIdIsSaidSo() async throws {
        let socket = try Socket(config: quickOptions(try unusedURL()))
        defer { socket.close() }
        socket.connect()

        let opening = await thrownError { try await socket.waitOpen(timeout: 0.3) }
        XCTAssertEqual(kind(opening), .timedOut)
        XCTAssertEqual("\(opening!)", (opening as? SteadyWSError)?.message)

        let unknown = await thrownError { try await socket.waitAcked("no-such-id", timeout: 1) }
        XCTAssertEqual(kind(unknown), .unknownMessage)
        XCTAssertEqual((unknown as? SteadyWSError)?.messageId, "no-such-id")
    }

    func testCancellingAWaitEndsItWithoutClosing() async throws {
        let socket = try Socket(config: quickOptions(try unusedURL()))
        defer { socket.close() }
        socket.connect()
        let task = Task { () -> Error? in
            await thrownError { try await socket.waitOpen() }
        }
        try await pause(0.3)
        task.cancel()
        guard let ended = try await Pending({ await task.value }).value(within: 2) else {
            XCTFail("waitOpen still pending 2 s after its task was cancelled")
            return
        }
        XCTAssertEqual(kind(ended ?? nil), .cancelled, "\(String(describing: ended))")
        XCTAssertNotEqual(socket.state, .closed)
    }

    // MARK: - one consumer

    func testASecondReaderThrowsAndTheFirstKeepsEverything() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let socket = try Socket(config: quickOptions(server.url))
        defer { socket.close() }
        let first = Recorder(socket)
        socket.connect()
        try await first.waitForState(.open)

        // While the recorder reads, another loop throws at its first element, over `events` as
        // over `messages`, and takes nothing.
        let second = await drain(socket.events)
        XCTAssertEqual(second.items, [], "a second reader got events")
        XCTAssertEqual(kind(second.error), .alreadyReading)
        XCTAssertTrue("\(second.error!)".contains("one reader"), "\(second.error!)")
        let messages = await drain(socket.messages)
        XCTAssertEqual(messages.items, [], "a second reader got messages")
        XCTAssertEqual(kind(messages.error), .alreadyReading)

        // The first reader still gets everything.
        let id = try await socket.sendAndWait(#"{"text":"for the first","n":10}"#, timeout: 15)
        try await first.waitFor("ack of \(id)") { event -> Bool? in
            event.ackedId == id ? true : nil
        }
        try await first.waitFor("message \(id)") { event -> Bool? in
            ReceivedMessage(event)?.id == id ? true : nil
        }
    }

    /// What keeps a stream: a view model's property, say. Before, the sequence itself was the
    /// reader, so a loop left with `break` kept the socket until the holder was released.
    private final class StreamHolder: @unchecked Sendable {
        let events: SocketEvents
        init(_ events: SocketEvents) { self.events = events }
    }

    func testALoopLeftWithBreakReleasesTheSocketAtOnceEvenWhenTheStreamIsKept() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let socket = try Socket(config: quickOptions(server.url))
        defer { socket.close() }
        socket.connect()
        try await socket.waitOpen(timeout: 15)
        let holder = StreamHolder(socket.events)
        for try await event in holder.events where event.stateChange == .open {
            break
        }
        // The next loop reads at once, and gets what comes next.
        let id = try await socket.sendAndWait(#"{"text":"after break","n":12}"#, timeout: 15)
        // (`collect` fails the test if the loop throws `alreadyReading`.)
        let next = await collect(socket.events, within: 10) { $0.contains { $0.ackedId == id } }
        XCTAssertTrue(next.contains { $0.ackedId == id }, "\(next)")
        // And the kept stream starts a loop of its own once no other reads.
        let again = holder.events.makeAsyncIterator()
        let taken = try await again.next()
        XCTAssertEqual(taken.flatMap { ReceivedMessage($0)?.id }, id)
        withExtendedLifetime(holder) {}
    }

    // MARK: - messages

    func testMessagesThrowsASendFailureAndReadsOnWhenIteratedAgain() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let sender = try Socket(config: quickOptions(try unusedURL()))
        defer { sender.close() }
        sender.connect()
        let doomed = try sender.send(#"{"text":"never delivered","n":13}"#, ttl: 0.2)

        // A fire-and-forget send that expires is not passed over: `messages` throws it.
        let first = await drain(sender.messages)
        guard let failure = first.error as? SteadyWSError, failure.kind == .sendFailed else {
            XCTFail("messages ended without the send failure: \(String(describing: first.error))")
            return
        }
        XCTAssertEqual(failure.messageId, doomed)
        XCTAssertEqual(failure.sendFailure, .expired)
        XCTAssertFalse(failure.message.isEmpty)
        // Nothing else was taken: the next loop reads on (here until close).
        let reading = Task { await drain(sender.messages) }
        try await pause(0.3)
        sender.close()
        let rest = try await Pending { await reading.value }.value(within: 5)
        XCTAssertNotNil(rest, "the second loop did not end after close")
        XCTAssertNil(rest?.error, "the second loop threw \(String(describing: rest?.error))")
    }

    // MARK: - cancelling waits

    func testSendAndWaitCancelledAfterQueueingThrowsTheIdAndTheMessageStillGoesOut() async throws {
        // Nothing listens yet: the message is queued and waits.
        let port = try unusedPort()
        let socket = try Socket(config: quickOptions("ws://127.0.0.1:\(port)/ws"))
        defer { socket.close() }
        socket.connect()
        let waiting = Task { await thrownError { try await socket.sendAndWait(#"{"text":"cancelled wait","n":14}"#) } }
        let queued = try await eventually(timeout: 5) { socket.pending().count == 1 }
        XCTAssertTrue(queued)
        waiting.cancel()
        let thrown = try await Pending { await waiting.value }.value(within: 5)
        let error = thrown.flatMap({ $0 }) as? SteadyWSError
        guard error?.kind == .cancelled, let id = error?.messageId else {
            XCTFail("sendAndWait cancelled after queueing threw \(String(describing: thrown))")
            return
        }
        XCTAssertEqual(socket.pending().map { $0.id }, [id], "the message stays queued")
        XCTAssertTrue("\(error!)".contains(id))

        // The server comes up: the message goes out, and the id waits again.
        let server = try ReferenceServer.start(listen: "127.0.0.1:\(port)")
        defer { server.sigkill() }
        try await socket.waitAcked(id, timeout: 20)
        XCTAssertEqual(socket.pending().count, 0)
    }

    func testCancelledWaitsEndTheirNativeWaitsAndLeaveNothingBehind() async throws {
        let socket = try Socket(config: quickOptions(try unusedURL()))
        defer { socket.close() }
        socket.connect()
        let queued = try socket.send(#"{"text":"never acked","n":15}"#)

        /// `count` waits (half `waitOpen`, half `waitAcked`), each cancelled once it is in progress.
        func cancelWaits(_ count: Int) async throws -> [Error?] {
            let tasks = (0..<count).map { index in
                Task { () -> Error? in
                    await thrownError {
                        if index.isMultiple(of: 2) {
                            try await socket.waitOpen()
                        } else {
                            try await socket.waitAcked(queued)
                        }
                    }
                }
            }
            let started = try await eventually(timeout: 10) { socket.waits.inProgress == count }
            XCTAssertTrue(started, "\(socket.waits.inProgress) of \(count) waits in progress")
            for task in tasks {
                task.cancel()
            }
            var errors: [Error?] = []
            for task in tasks {
                errors.append(await task.value)
            }
            return errors
        }

        // A thousand at once (1 000 tasks in flight). The first rounds grow the runtime's and the
        // allocator's pools (seen here: about 2 MiB in steps over the first dozen rounds, then
        // flat); a wait that outlived its cancellation would add its task and native future per
        // wait, megabytes over the ten measured rounds.
        for _ in 0..<3 {
            _ = try await cancelWaits(1_000)
        }
        let before = residentBytes()
        let started = Date()
        var errors: [Error?] = []
        for _ in 0..<10 {
            errors = try await cancelWaits(1_000)
            XCTAssertEqual(socket.waits.inProgress, 0)
        }
        let elapsed = Date().timeIntervalSince(started)
        let after = residentBytes()
        let growth = Int64(after) - Int64(before)
        print("cancelled waits: 10 rounds of 1000 in \(String(format: "%.2f", elapsed)) s after a first round; "
            + "native waits left: \(socket.waits.inProgress); RSS \(before / 1_024) KiB -> \(after / 1_024) KiB "
            + "(growth \(growth / 1_024) KiB, \(growth / 10_000) bytes a wait)")

        // Every wait ended with its cancellation: none reached its time limit or an answer.
        let cancelled = errors.compactMap { $0 as? SteadyWSError }.filter { $0.kind == .cancelled }
        XCTAssertEqual(cancelled.filter { $0.messageId == nil }.count, 500, "waitOpen")
        XCTAssertEqual(cancelled.filter { $0.messageId == queued }.count, 500, "waitAcked")
        // A cancelled wait returns only once its native future has ended: none is left running.
        XCTAssertEqual(socket.waits.inProgress, 0)
        XCTAssertLessThan(growth, 4 << 20, "10 000 cancelled waits grew the process by \(growth) bytes")
        // The socket is unharmed: still trying, the message still queued.
        XCTAssertNotEqual(socket.state, .closed)
        XCTAssertEqual(socket.pending().map { $0.id }, [queued])
    }

    // MARK: - no leak across the FFI

    func testAThousandSocketsMadeUsedAndClosedLeaveNothingBehind() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }

        func cycle(_ count: Int) async throws {
            for n in 0..<count {
                let socket = try Socket(config: quickOptions(server.url))
                socket.connect()
                try await socket.sendAndWait("{\"text\":\"cycle\",\"n\":\(n)}", timeout: 15)
                let opened = await collect(socket.events, within: 5) { $0.contains { $0.ackedId != nil } }
                XCTAssertTrue(opened.contains { $0.stateChange == .open })
                socket.close()
            }
        }

        let baseline = liveNativeSockets()
        // Warm-up. Seen here: the process grows by about 1 MiB per 500 socket lifetimes for the
        // first 2 000, then less and less (0.1 MiB per 500 after 3 500): the allocator's and the
        // runtimes' pools filling, not a per-socket leak, which would stay linear.
        try await cycle(2_000)
        let settledWarm = try await eventually(timeout: 5) { liveNativeSockets() == baseline }
        XCTAssertTrue(settledWarm, "\(liveNativeSockets() - baseline) native sockets left after 2000")
        let before = residentBytes()
        let started = Date()
        try await cycle(500)
        let half = residentBytes()
        try await cycle(500)
        let elapsed = Date().timeIntervalSince(started)
        let settled = try await eventually(timeout: 5) { liveNativeSockets() == baseline }
        let after = residentBytes()
        let growth = Int64(after) - Int64(before)
        let secondHalf = Int64(after) - Int64(half)
        print("sockets: 1000 made, connected, acked and closed in \(String(format: "%.1f", elapsed)) s; "
            + "native sockets alive: \(liveNativeSockets()) (baseline \(baseline)); "
            + "RSS \(before / 1_024) KiB -> \(half / 1_024) KiB after 500 -> \(after / 1_024) KiB after 1000")
        XCTAssertTrue(settled, "\(liveNativeSockets() - baseline) native sockets left behind")
        XCTAssertLessThan(growth, 2 << 20, "1000 socket lifetimes grew the process by \(growth) bytes")
        XCTAssertLessThan(secondHalf, 1 << 20, "the second 500 socket lifetimes grew the process by \(secondHalf) bytes")
    }

    func testASocketReleasedWithoutCloseReleasesItsNativeSide() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let baseline = liveNativeSockets()
        var socket: Socket? = try Socket(config: quickOptions(server.url))
        socket?.connect()
        try await socket?.waitOpen(timeout: 15)
        // A reader waiting in a native pull, too.
        let reading = Task { [events = socket!.events] in await drain(events) }
        try await pause(0.2)
        XCTAssertEqual(liveNativeSockets(), baseline + 1)
        socket = nil   // never closed
        let released = try await eventually(timeout: 5) { liveNativeSockets() == baseline }
        XCTAssertTrue(released, "the native socket outlived its Socket")
        let ended = try await Pending { await reading.value }.value(within: 5)
        XCTAssertNotNil(ended, "the reader did not end when the socket was released")
    }

    func testAStreamThatStopsLeavesTheRestForTheNext() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let socket = try Socket(config: quickOptions(server.url))
        defer { socket.close() }
        socket.connect()
        try await socket.waitOpen(timeout: 15)
        var sent: [String] = []
        for n in 0..<20 {
            sent.append(try socket.send("{\"text\":\"batch\",\"n\":\(n)}"))
        }
        for id in sent {
            try await socket.waitAcked(id, timeout: 15)
        }
        try await pause(0.3)

        // The first stream takes 5 messages and stops (`break`): the batch it pulled is not lost.
        var taken: [ReceivedMessage] = []
        for try await message in socket.messages {
            taken.append(message)
            if taken.count == 5 {
                break
            }
        }
        // The next stream continues where the first stopped.
        let missing = sent.count - taken.count
        let rest = await collect(socket.messages, within: 15) { $0.count >= missing }
        let ids = (taken + rest).compactMap { $0.id }
        XCTAssertEqual(ids, sent, "lost, duplicated or reordered across streams")
    }

    func testCancellingTheConsumerEndsItsStreamAndLosesNothing() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let socket = try Socket(config: quickOptions(server.url))
        defer { socket.close() }
        socket.connect()
        try await socket.waitOpen(timeout: 15)
        // Take what is queued so far (Connecting, Open), so the next read waits.
        _ = await collect(socket.events, within: 5) { events in events.contains { $0.stateChange == .open } }

        let waiting = Task { await drain(socket.events) }
        try await pause(0.3)
        waiting.cancel()
        let drained = try await Pending { await waiting.value }.value(within: 2)
        XCTAssertNotNil(drained, "a cancelled consumer still waits")
        XCTAssertNil(drained?.error, "cancellation ends the loop quietly")
        let ended = drained?.items

        // What arrives now goes to the next consumer, none of it lost.
        let id = try await socket.sendAndWait(#"{"text":"after the cancel","n":11}"#, timeout: 15)
        let events = await collect(socket.events, within: 15) { events in
            events.contains { ReceivedMessage($0)?.id == id }
        }
        let earlier = ended ?? []
        XCTAssertEqual((earlier + events).filter { $0.ackedId == id }.count, 1, "\(earlier) \(events)")
        XCTAssertEqual((earlier + events).filter { ReceivedMessage($0)?.id == id }.count, 1, "\(earlier) \(events)")
    }

    // MARK: - the generated API alone

    func testNativeCloseEndsAPendingNextEvents() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let native = try NativeSocket(config: quickOptions(server.url))
        defer { native.close() }
        let reader = Pending { () -> [SocketEvent] in
            var seen: [SocketEvent] = []
            while true {
                let batch = (try? await native.nextEvents()) ?? []
                if batch.isEmpty {
                    return seen
                }
                seen.append(contentsOf: batch)
            }
        }
        native.connect()
        let opened = try await eventually(timeout: 15) { native.state() == .open }
        XCTAssertTrue(opened, "state: \(native.state())")
        XCTAssertFalse(reader.isDone, "nextEvents returned empty before close()")

        native.close()
        XCTAssertEqual(native.state(), .closed)
        let seen = try await reader.value(within: 5)
        XCTAssertNotNil(seen, "nextEvents still pending 5 s after close()")
        XCTAssertTrue(seen?.contains { $0.stateChange == .open } == true, "\(seen ?? [])")
        XCTAssertEqual(seen?.last?.stateChange, .closed, "\(seen ?? [])")
        // The stream stays ended: no reconnect, no more events.
        XCTAssertEqual(try native.tryNextEvents(), [])
        let again = try await Pending { (try? await native.nextEvents()) == [] }.value(within: 5)
        XCTAssertEqual(again, true, "nextEvents() after close()")
        let outcome = try await Pending { await thrownError { try await native.waitOpen() } }.value(within: 5)
        guard case .Failure(.closed, _, _, _)? = outcome.flatMap({ $0 }) as? NativeError else {
            XCTFail("waitOpen after close(): \(String(describing: outcome))")
            return
        }
    }

    // MARK: - lifecycle hint

    func testBackgroundDisconnectsAfterGraceAndForegroundReconnects() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        var options = quickOptions(server.url)
        options.background = .disconnectAfterGrace
        options.backgroundGraceMs = 300
        let socket = try Socket(config: options)
        defer { socket.close() }
        let recorder = Recorder(socket)
        socket.connect()
        try await socket.waitOpen(timeout: 15)

        socket.setAppState(.background)
        try await recorder.waitForState(.suspended)
        XCTAssertEqual(socket.state, .suspended)
        XCTAssertEqual(recorder.changes.first { $0.state == .suspended }?.cause, .lifecycle)

        // Queued while suspended; delivered after the return to the foreground.
        let queued = try socket.send(#"{"text":"from the background","n":3}"#)
        XCTAssertEqual(socket.stats.outboxLen, 1)
        let mark = recorder.count
        socket.setAppState(.foreground)
        try await recorder.waitForState(.open, from: mark)
        try await socket.waitAcked(queued, timeout: 15)
        try await recorder.waitFor("ack of the queued message") { event -> Bool? in
            event.ackedId == queued ? true : nil
        }
        XCTAssertEqual(socket.state, .open)
    }
}
