// The binding scenarios shared by every language, against the reference server binary
// (`STEADYWS_SERVER`, see Support.swift): connect, send, ack, receive; state events; errors;
// shutdown and close; the listener; the lifecycle hint; SIGKILL and restart with nothing lost or
// duplicated.

import Foundation
import XCTest
import SteadyWS

/// The JSON the tests send, decoded to compare content rather than bytes.
private struct Note: Codable, Equatable {
    let text: String
    let n: Int
}

final class SteadyWSTests: XCTestCase {
    // MARK: connect, send, ack, receive

    func testConnectSendAckAndReceive() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let alice = try SteadyConnection(options: quickOptions(server.url))
        let bob = try SteadyConnection(options: quickOptions(server.url))
        defer {
            alice.close()
            bob.close()
        }
        let aliceEvents = Recorder(alice)
        let bobEvents = Recorder(bob)
        alice.connect()
        bob.connect()
        try await alice.waitUntilOpen(timeout: 15)
        try await bob.waitUntilOpen(timeout: 15)
        XCTAssertTrue(alice.state.isOpen)

        let json = #"{"text":"hello from swift","n":1}"#
        // Returns once the server acknowledged (stored) the message.
        let id = try await alice.send(json)
        XCTAssertFalse(id.isEmpty)
        XCTAssertGreaterThanOrEqual(alice.stats.messagesAcked, 1)
        // The acked event also reaches the event streams (which run on their own tasks).
        try await aliceEvents.waitFor("ack of \(id)") { event -> Bool? in
            event.ackedId == id ? true : nil
        }

        // The server fans the message out to every client, the sender included.
        for (name, recorder) in [("bob", bobEvents), ("alice", aliceEvents)] {
            let (seq, data) = try await recorder.waitFor("\(name) receiving \(id)") { event -> (UInt64?, MessageData)? in
                if case let .message(messageId, messageSeq, _, messageData) = event, messageId == id {
                    return (messageSeq, messageData)
                }
                return nil
            }
            XCTAssertNotNil(seq, "envelope messages carry a seq")
            guard case let .json(received) = data else {
                XCTFail("\(name) expected JSON, got \(data)")
                continue
            }
            let decoder = JSONDecoder()
            XCTAssertEqual(
                try decoder.decode(Note.self, from: Data(received.utf8)),
                try decoder.decode(Note.self, from: Data(json.utf8))
            )
        }
        XCTAssertEqual(bobEvents.messages.filter { $0.id == id }.count, 1, "delivered once")
        XCTAssertEqual(aliceEvents.acked.filter { $0 == id }.count, 1, "acked once")

        // enqueue + acked event: the same thing without waiting in `send`.
        let second = try alice.enqueue(#"{"text":"second","n":2}"#)
        try await aliceEvents.waitFor("ack of \(second)") { event -> Bool? in
            event.ackedId == second ? true : nil
        }
    }

    // MARK: state events

    func testStateEventsFollowConnectAndDisconnect() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let connection = try SteadyConnection(options: quickOptions(server.url))
        defer { connection.close() }
        let recorder = Recorder(connection)
        XCTAssertEqual(connection.state, .idle)

        connection.connect()
        try await recorder.waitForState(.open)
        connection.disconnect()
        try await recorder.waitForState(.closed)
        XCTAssertEqual(connection.state, .closed)

        let states = recorder.states
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
        }

        // states(): the current state first.
        var iterator = connection.states().makeAsyncIterator()
        let first = await iterator.next()
        XCTAssertEqual(first, .closed)
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

    // MARK: errors

    func testHttpUrlThrowsInvalidUrlWithTheWsSuggestion() {
        XCTAssertThrowsError(try SteadyConnection(url: "http://127.0.0.1:8080/ws")) { error in
            guard case let SteadyError.InvalidUrl(message: message) = error else {
                XCTFail("expected SteadyError.InvalidUrl, got \(error)")
                return
            }
            XCTAssertTrue(message.contains("ws://127.0.0.1:8080/ws"), message)
            // The error prints as its message.
            XCTAssertEqual("\(error)", message)
        }
        // The generated API throws the same error.
        XCTAssertThrowsError(try SteadySocket(options: SocketOptions(url: "https://example.com/ws"))) { error in
            XCTAssertTrue((error as? SteadyError)?.message.contains("wss://example.com/ws") == true, "\(error)")
        }
    }

    func testSendingSomethingThatIsNotJsonThrowsNotJson() throws {
        let connection = try SteadyConnection(options: quickOptions("ws://127.0.0.1:9/ws"))
        defer { connection.close() }
        XCTAssertThrowsError(try connection.enqueue("not json")) { error in
            guard case SteadyError.NotJson = error else {
                XCTFail("expected SteadyError.NotJson, got \(error)")
                return
            }
        }
    }

    func testRefusedPortReportsConnectionLostRefused() async throws {
        // A port that was just listening and is not any more.
        let server = try ReferenceServer.start()
        let url = server.url
        server.sigkill()

        let connection = try SteadyConnection(options: quickOptions(url))
        defer { connection.close() }
        let recorder = Recorder(connection)
        connection.connect()
        let problem = try await recorder.waitFor("ConnectionLost") { event -> ConnectionProblem? in
            if case let .connectionLost(problem) = event {
                return problem
            }
            return nil
        }
        XCTAssertEqual(problem.kind, .refused, problem.message)
        XCTAssertTrue(problem.message.contains("refused"), problem.message)
        XCTAssertNil(problem.httpStatus)
        XCTAssertNil(problem.closeCode)
        // It keeps trying.
        try await recorder.waitFor("Reconnecting") { event -> Bool? in
            if case .reconnecting = event.stateChange {
                return true
            }
            return nil
        }

        // A send that cannot be acknowledged in time throws SendFailure with reason .expired
        // (on a task of its own: were it never to end, the test fails instead of hanging).
        let late = Pending { () -> Result<String, Error> in
            do {
                return .success(try await connection.send(#"{"late":true}"#, ttl: 0.2))
            } catch {
                return .failure(error)
            }
        }
        let outcome = try await late.value(within: 10)
        guard case let .failure(error)? = outcome else {
            XCTFail("expected SendFailure, got \(String(describing: outcome))")
            return
        }
        let failure = try XCTUnwrap(error as? SendFailure, "expected SendFailure, got \(error)")
        XCTAssertEqual(failure.reason, .expired, failure.message)
        XCTAssertFalse(failure.id.isEmpty)
        // The sendFailed event carries the same kind.
        let kind = try await recorder.waitFor("SendFailed") { event -> SendFailureKind? in
            if case let .sendFailed(id, reason, _) = event, id == failure.id {
                return reason
            }
            return nil
        }
        XCTAssertEqual(kind, .expired)
    }

    // MARK: shutdown and close

    func testShutdownEndsAPendingNextEvent() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        // The generated API alone: no layer, events read with nextEvent().
        let socket = try SteadySocket(options: quickOptions(server.url))
        defer { socket.shutdown() }
        let reader = Pending { () -> [SocketEvent] in
            var seen: [SocketEvent] = []
            while let event = await socket.nextEvent() {
                seen.append(event)
            }
            return seen
        }
        socket.connect()
        let opened = try await eventually(timeout: 15) { socket.state() == .open }
        XCTAssertTrue(opened, "state: \(socket.state())")
        XCTAssertFalse(reader.isDone, "nextEvent() returned nil before shutdown()")

        socket.shutdown()
        let seen = try await reader.value(within: 5)
        XCTAssertNotNil(seen, "nextEvent() still pending 5 s after shutdown()")
        XCTAssertTrue(seen?.contains { $0.stateChange == SocketState.open } == true, "\(seen ?? [])")
        // The stream stays ended: no reconnect, no more events.
        XCTAssertNil(socket.tryNextEvent())
        let again = try await Pending { await socket.nextEvent() == nil }.value(within: 5)
        XCTAssertEqual(again, true, "nextEvent() after shutdown()")
        socket.connect()
        try await Task.sleep(nanoseconds: 300_000_000)
        XCTAssertNil(socket.tryNextEvent(), "events after shutdown()")
    }

    func testCloseShutsTheSocketDownAndEndsTheStreams() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let connection = try SteadyConnection(options: quickOptions(server.url))
        defer { connection.close() }
        let stream = connection.events()
        let drained = Pending { () -> [SocketEvent] in
            var seen: [SocketEvent] = []
            for await event in stream {
                seen.append(event)
            }
            return seen
        }
        connection.connect()
        try await connection.waitUntilOpen(timeout: 15)

        connection.close()
        // Every events() stream ends...
        let seen = try await drained.value(within: 5)
        XCTAssertNotNil(seen, "events() still open 5 s after close()")
        let connecting = seen?.contains { event in
            if case .connecting = event.stateChange {
                return true
            }
            return false
        }
        XCTAssertEqual(connecting, true, "\(seen ?? [])")
        // ...and so does the socket's own stream (shutdown()): nextEvent() returns what the
        // listener left unread (at most the last state change), then nil, instead of waiting
        // for ever.
        let socket = connection.socket
        let ended = try await Pending { () -> Bool in
            while await socket.nextEvent() != nil {}
            return true
        }.value(within: 5)
        XCTAssertEqual(ended, true, "socket.nextEvent() still pending 5 s after close()")
        XCTAssertNil(socket.tryNextEvent())
        // Waits on a closed connection end at once.
        do {
            try await connection.waitUntilOpen(timeout: 5)
            XCTFail("waitUntilOpen succeeded after close()")
        } catch let error as SteadyWaitError {
            XCTAssertEqual(error, .closed)
        }
        // Closing twice is harmless.
        connection.close()
    }

    // MARK: listener

    func testListenerErrorsAreLoggedAndDeliveryGoesOn() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        let socket = try SteadySocket(options: quickOptions(server.url))
        defer {
            socket.setListener(listener: nil)
            socket.shutdown()
        }
        // Throws on every other event; Rust logs the ListenerError and keeps delivering.
        let listener = FlakyListener()
        socket.setListener(listener: listener)
        socket.connect()
        let opened = try await eventually(timeout: 15) {
            listener.events.contains { $0.stateChange == SocketState.open }
        }
        XCTAssertTrue(opened, "events: \(listener.events)")
        XCTAssertGreaterThanOrEqual(listener.thrown, 1, "events: \(listener.events)")
    }

    // MARK: lifecycle hint

    func testBackgroundDisconnectsAfterGraceAndForegroundReconnects() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        var options = quickOptions(server.url)
        options.background = .disconnectAfterGrace
        options.backgroundGraceMs = 300
        let connection = try SteadyConnection(options: options)
        defer { connection.close() }
        let recorder = Recorder(connection)
        connection.connect()
        try await connection.waitUntilOpen(timeout: 15)

        connection.setAppState(.background)
        try await recorder.waitForState(.suspended)
        XCTAssertEqual(connection.state, .suspended)

        // Queued while suspended; delivered after the return to the foreground.
        let queued = try connection.enqueue(#"{"text":"from the background","n":3}"#)
        XCTAssertEqual(connection.stats.outboxLen, 1)
        let mark = recorder.count
        connection.setAppState(.foreground)
        try await recorder.waitForState(.open, from: mark)
        try await recorder.waitFor("ack of the queued message") { event -> Bool? in
            event.ackedId == queued ? true : nil
        }
        XCTAssertEqual(connection.state, .open)
    }

    // MARK: SIGKILL and restart

    func testServerSigkillAndRestartLosesAndDuplicatesNothing() async throws {
        let dataDir = try temporaryDirectory("kill")
        defer { try? FileManager.default.removeItem(at: dataDir) }
        var server: ReferenceServer? = try ReferenceServer.start(arguments: ["--data-dir", dataDir.path])
        defer { server?.sigkill() }
        let url = try XCTUnwrap(server?.url)

        let alice = try SteadyConnection(options: quickOptions(url))
        let bob = try SteadyConnection(options: quickOptions(url))
        defer {
            alice.close()
            bob.close()
        }
        let aliceEvents = Recorder(alice)
        let bobEvents = Recorder(bob)
        alice.connect()
        bob.connect()
        try await alice.waitUntilOpen(timeout: 15)
        try await bob.waitUntilOpen(timeout: 15)

        let rounds = 120
        let total = 2 * rounds
        var sent: [String] = []
        var killed: ReferenceServer?
        for i in 0..<rounds {
            // Alice writes up; Bob's messages come down to Alice through the server's stream.
            sent.append(try alice.enqueue("{\"from\":\"alice\",\"n\":\(i)}"))
            sent.append(try bob.enqueue("{\"from\":\"bob\",\"n\":\(i)}"))
            if i == 50 {
                server?.sigkill()
                killed = server
                server = nil
            }
            if i == 70 {
                server = try killed?.restart()
            }
            try await Task.sleep(nanoseconds: 15_000_000)
        }
        let settled = try await eventually(timeout: 30) {
            aliceEvents.messages.count >= total && aliceEvents.acked.count + bobEvents.acked.count >= total
        }
        XCTAssertTrue(settled, "alice received \(aliceEvents.messages.count), acks \(aliceEvents.acked.count)+\(bobEvents.acked.count) of \(total)")

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
        print("sigkill scenario: sent=\(sent.count) received=\(ids.count) lost=\(lost) duplicated=\(duplicated)")
        XCTAssertEqual(lost, 0, "lost")
        XCTAssertEqual(duplicated, 0, "duplicated")
        XCTAssertEqual(Set(ids), Set(sent), "the server stored each message exactly once")
        XCTAssertGreaterThanOrEqual(alice.stats.reconnects, 1)
    }
}
