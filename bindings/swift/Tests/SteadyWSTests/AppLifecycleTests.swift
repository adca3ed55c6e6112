// The app adapter: the decisions (`AppLifecycleMachine`, a plain value: every rule, no UIKit, no
// clock) and the attachment that carries them out (`AppAttachment`, on the main actor, with a
// fake `BackgroundTaskRunner` and a real socket against the reference server). None of this
// needs UIKit, so it runs on macOS and Linux; the UIKit and SwiftUI glue (`attachToApp()`,
// `.steadySocketLifecycle`) is compiled on Apple platforms only and not run by this suite.

import Foundation
import XCTest
@testable import SteadyWS

#if canImport(SwiftUI)
import SwiftUI
#endif

/// Background tasks that are only recorded; `expire` calls a task's expiration handler as iOS
/// would.
@MainActor
final class FakeBackgroundTasks: BackgroundTaskRunner {
    private(set) var begun: [Int] = []
    private(set) var ended: [Int] = []
    private var handlers: [Int: @MainActor @Sendable () -> Void] = [:]
    /// Answer nil (the OS refuses) when set.
    var refuse = false
    /// Call the expiration handler before `beginTask` returns, as iOS may when no background time
    /// is left.
    var expireWhileBeginning = false

    func beginTask(named name: String, onExpiry: @escaping @MainActor @Sendable () -> Void) -> Int? {
        guard !refuse else { return nil }
        let id = begun.count + 1
        begun.append(id)
        handlers[id] = onExpiry
        if expireWhileBeginning {
            onExpiry()
        }
        return id
    }

    func endTask(_ id: Int) {
        ended.append(id)
        handlers[id] = nil
    }

    /// The tasks begun and not ended.
    var running: [Int] {
        begun.filter { !ended.contains($0) }
    }

    /// Call the expiration handler of `id`, as iOS does when the time is up.
    func expire(_ id: Int) {
        let handler = handlers[id]
        handler?()
    }
}

/// Wait on the main actor (polling every 20 ms, so the attachment's own looks run in between)
/// until `condition` holds; false on timeout. `eventually` in Support.swift is not isolated, and a
/// closure reading main-actor state may not be sent to it.
@MainActor
private func eventuallyOnMain(timeout: TimeInterval, _ condition: @MainActor () -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline {
            return false
        }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    return true
}

final class AppLifecycleTests: XCTestCase {
    private typealias Machine = AppLifecycleMachine

    /// `.disconnectAfterGrace` with the grace `disconnectInBackground()` sets.
    private func disconnecting() -> Machine {
        var options = SocketConfig(url: "wss://example.com/ws")
        options.disconnectInBackground()
        return Machine(timing: Machine.Timing(config: options))
    }

    /// `.keepAlive`, the native default.
    private func keepingAlive() -> Machine {
        Machine(timing: Machine.Timing(config: SocketConfig(url: "wss://example.com/ws")))
    }

    // MARK: - Decisions

    func testAttachReportsTheCurrentPhaseAtOnce() {
        var background = disconnecting()
        XCTAssertEqual(background.attach(.background), [.report(.background)])
        XCTAssertFalse(background.holdsBackgroundTask, "a background launch runs on its own handler's time")
        XCTAssertEqual(background.reported, .background)

        var launching = disconnecting()
        XCTAssertEqual(launching.attach(.inactive), [.report(.foreground)])
        var active = disconnecting()
        XCTAssertEqual(active.attach(.active), [.report(.foreground)])
        XCTAssertEqual(active.attach(.background), [], "attach works once")
        XCTAssertTrue(active.isAttached)
    }

    func testInactiveIsTheForeground() {
        XCTAssertEqual(AppPhase.active.appState, .foreground)
        XCTAssertEqual(AppPhase.inactive.appState, .foreground)
        XCTAssertEqual(AppPhase.background.appState, .background)

        var machine = disconnecting()
        _ = machine.attach(.active)
        XCTAssertEqual(machine.update(.inactive, now: 1), [], "app switcher, Control Center, a call's banner")
        XCTAssertEqual(machine.update(.active, now: 2), [])
        XCTAssertFalse(machine.holdsBackgroundTask)
    }

    func testBackgroundBeginsATaskAndTheForegroundEndsIt() {
        var machine = disconnecting()
        _ = machine.attach(.active)
        XCTAssertEqual(machine.update(.inactive, now: 99), [])
        XCTAssertEqual(machine.update(.background, now: 100), [.beginBackgroundTask, .report(.background)])
        XCTAssertTrue(machine.holdsBackgroundTask)
        XCTAssertEqual(machine.deadline, 123, "grace 20 s + 3 s for the close")
        XCTAssertEqual(machine.update(.background, now: 101), [], "a repeat does nothing")

        // On the way back: background -> inactive -> active.
        XCTAssertEqual(machine.update(.inactive, now: 105), [.report(.foreground), .endBackgroundTask])
        XCTAssertFalse(machine.holdsBackgroundTask)
        XCTAssertNil(machine.deadline)
        XCTAssertEqual(machine.update(.active, now: 106), [])

        // A second trip holds a new task.
        XCTAssertEqual(machine.update(.background, now: 200), [.beginBackgroundTask, .report(.background)])
        XCTAssertEqual(machine.deadline, 223)
    }

    func testTheTaskEndsAfterTheGracefulCloseAndTheLinger() {
        var machine = disconnecting()
        _ = machine.attach(.active)
        _ = machine.update(.background, now: 0)
        XCTAssertEqual(machine.observe(.open, outboxLength: 2, now: 1), [])
        XCTAssertEqual(machine.observe(.open, outboxLength: 0, now: 5), [], "the grace runs: the close is awaited")
        XCTAssertEqual(machine.observe(.suspended, outboxLength: 0, now: 20.1), [], "the close frame is being written")
        XCTAssertEqual(machine.observe(.suspended, outboxLength: 0, now: 20.35), [])
        XCTAssertEqual(machine.observe(.suspended, outboxLength: 0, now: 20.7), [.endBackgroundTask])
        XCTAssertFalse(machine.holdsBackgroundTask)
        XCTAssertEqual(machine.observe(.suspended, outboxLength: 0, now: 21), [], "ended once")
    }

    func testClosedFailedOrIdleEndTheTask() {
        let finished: [SocketState] = [.closed, .failed(reason: "refused", retryable: false), .idle, .suspended]
        for state in finished {
            var machine = disconnecting()
            _ = machine.attach(.active)
            _ = machine.update(.background, now: 0)
            XCTAssertEqual(machine.observe(state, outboxLength: 3, now: 1), [], "\(state)")
            XCTAssertEqual(machine.observe(state, outboxLength: 3, now: 1.5), [.endBackgroundTask], "\(state)")
        }
    }

    func testBusyAgainWaitsForTheNextFinish() {
        var machine = disconnecting()
        _ = machine.attach(.active)
        _ = machine.update(.background, now: 0)
        XCTAssertEqual(machine.observe(.idle, outboxLength: 0, now: 1), [])
        // The app called connect() in the background.
        XCTAssertEqual(machine.observe(.connecting(attempt: 1), outboxLength: 0, now: 1.2), [])
        XCTAssertEqual(machine.observe(.open, outboxLength: 0, now: 1.6), [], "the linger starts over")
        XCTAssertEqual(machine.observe(.suspended, outboxLength: 0, now: 20), [])
        XCTAssertEqual(machine.observe(.suspended, outboxLength: 0, now: 20.5), [.endBackgroundTask])
    }

    func testTheDeadlineEndsTheTaskWhateverTheSocketDoes() {
        var machine = disconnecting()
        _ = machine.attach(.active)
        _ = machine.update(.background, now: 50)
        XCTAssertEqual(machine.observe(.waitingForNetwork, outboxLength: 4, now: 72.9), [])
        XCTAssertEqual(machine.observe(.waitingForNetwork, outboxLength: 4, now: 73), [.endBackgroundTask])
    }

    func testKeepAliveHoldsTheTaskUntilTheOutboxIsAcknowledged() {
        var machine = keepingAlive()
        XCTAssertNil(machine.timing.disconnectAfter)
        XCTAssertEqual(machine.timing.hold, 20)
        _ = machine.attach(.active)
        _ = machine.update(.background, now: 0)
        XCTAssertEqual(machine.deadline, 20)
        XCTAssertEqual(machine.observe(.open, outboxLength: 3, now: 1), [])
        XCTAssertEqual(machine.observe(.reconnecting(attempt: 1, retryInMs: 200), outboxLength: 3, now: 2), [])
        XCTAssertEqual(machine.observe(.open, outboxLength: 0, now: 3), [])
        XCTAssertEqual(machine.observe(.open, outboxLength: 0, now: 3.5), [.endBackgroundTask])
    }

    func testTheHoldFitsInWhatIOSGives() {
        var options = SocketConfig(url: "wss://example.com/ws")
        XCTAssertNil(options.background, "the native default is keepAlive")
        options.disconnectInBackground()
        XCTAssertEqual(options.background, .disconnectAfterGrace)
        XCTAssertEqual(options.backgroundGraceMs, 20_000)
        XCTAssertEqual(SocketConfig.recommendedBackgroundGrace, 20)
        let timing = Machine.Timing(config: options)
        XCTAssertEqual(timing.disconnectAfter, 20)
        XCTAssertEqual(timing.hold, 23)
        XCTAssertLessThan(timing.hold, 30, "iOS gives a background task about 30 s")

        // The native default grace (30 s) does not fit: the hold is capped, and the task ends
        // before the close.
        var native = SocketConfig(url: "wss://example.com/ws")
        native.background = .disconnectAfterGrace
        XCTAssertNil(native.backgroundGraceMs, "no grace given: the native default applies")
        XCTAssertEqual(backgroundDisconnectAfterMs(config: native), 30_000)
        XCTAssertEqual(Machine.Timing(config: native).hold, 25)

        options.disconnectInBackground(after: 5)
        XCTAssertEqual(options.backgroundGraceMs, 5_000)
        XCTAssertEqual(Machine.Timing(config: options).hold, 8)
    }

    func testExpirationEndsTheTaskAtOnceAndOnce() {
        var machine = disconnecting()
        _ = machine.attach(.active)
        _ = machine.update(.background, now: 0)
        XCTAssertEqual(machine.backgroundTaskExpired(), [.endBackgroundTask])
        XCTAssertFalse(machine.holdsBackgroundTask)
        XCTAssertEqual(machine.backgroundTaskExpired(), [])
        XCTAssertEqual(machine.observe(.open, outboxLength: 0, now: 30), [])
        XCTAssertEqual(machine.update(.active, now: 40), [.report(.foreground)], "nothing left to end")
    }

    func testARefusedTaskIsNotEnded() {
        var machine = disconnecting()
        _ = machine.attach(.active)
        _ = machine.update(.background, now: 0)
        machine.backgroundTaskRefused()
        XCTAssertFalse(machine.holdsBackgroundTask)
        XCTAssertEqual(machine.observe(.suspended, outboxLength: 0, now: 21), [])
        XCTAssertEqual(machine.update(.active, now: 40), [.report(.foreground)])
    }

    func testDetachEndsAHeldTaskAndStopsReporting() {
        var machine = disconnecting()
        _ = machine.attach(.active)
        _ = machine.update(.background, now: 0)
        XCTAssertEqual(machine.detach(), [.endBackgroundTask])
        XCTAssertFalse(machine.isAttached)
        XCTAssertEqual(machine.detach(), [], "idempotent")
        XCTAssertEqual(machine.update(.active, now: 1), [])
        XCTAssertEqual(machine.attach(.active), [], "not again")

        var never = disconnecting()
        XCTAssertEqual(never.update(.background, now: 0), [], "nothing before attach")
        XCTAssertEqual(never.detach(), [])
    }

    func testScenePhasesMapInactiveToTheForeground() throws {
        #if canImport(SwiftUI)
        guard #available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *) else {
            throw XCTSkip("ScenePhase needs iOS 14 / macOS 11")
        }
        XCTAssertEqual(AppPhase(ScenePhase.active), .active)
        XCTAssertEqual(AppPhase(ScenePhase.inactive), .inactive)
        XCTAssertEqual(AppPhase(ScenePhase.background), .background)
        XCTAssertEqual(AppPhase(ScenePhase.inactive).appState, .foreground)
        #else
        throw XCTSkip("needs SwiftUI, which exists on Apple platforms only: AppPhase(ScenePhase) is not compiled here")
        #endif
    }

    // MARK: - The attachment (main actor, fake background tasks, a real socket)

    @MainActor
    func testAttachedInTheBackgroundTheSocketIsToldSo() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        var options = quickOptions(server.url)
        options.disconnectInBackground(after: 0.3)
        let socket = try Socket(config: options)
        defer { socket.close() }
        let tasks = FakeBackgroundTasks()

        // A background launch: attached before connect(), as an app would.
        let attachment = AppAttachment(socket: socket, phase: .background, backgroundTasks: tasks, monitorsNetwork: false)
        XCTAssertEqual(attachment.machine.reported, .background)
        socket.connect()
        // Told .background: the grace runs out and the socket suspends itself.
        let suspended = try await eventuallyOnMain(timeout: 15) { socket.state == .suspended }
        XCTAssertTrue(suspended, "state: \(socket.state)")
        XCTAssertEqual(tasks.begun, [], "no task for a background launch")

        attachment.update(.inactive)
        let reopened = try await eventuallyOnMain(timeout: 15) { socket.state == .open }
        XCTAssertTrue(reopened, "state: \(socket.state)")
        attachment.detach()
    }

    @MainActor
    func testTheTaskIsHeldUntilTheSocketSuspended() async throws {
        let server = try ReferenceServer.start()
        defer { server.sigkill() }
        var options = quickOptions(server.url)
        options.disconnectInBackground(after: 0.3)
        let socket = try Socket(config: options)
        defer { socket.close() }
        let tasks = FakeBackgroundTasks()
        let attachment = AppAttachment(
            socket: socket, phase: .active, backgroundTasks: tasks, monitorsNetwork: false)
        socket.connect()
        try await socket.waitOpen(timeout: 15)

        attachment.update(.inactive)
        XCTAssertEqual(tasks.begun, [])
        attachment.update(.background)
        XCTAssertEqual(tasks.begun, [1], "begun on the way to the background, before returning")
        XCTAssertEqual(tasks.running, [1])
        let ended = try await eventuallyOnMain(timeout: 15) { tasks.ended == [1] }
        XCTAssertTrue(ended, "ended: \(tasks.ended), state: \(socket.state)")
        XCTAssertEqual(socket.state, .suspended, "ended after the graceful close")

        attachment.update(.active)
        try await socket.waitOpen(timeout: 15)
        XCTAssertEqual(tasks.begun, [1])
        XCTAssertEqual(tasks.running, [])
    }

    @MainActor
    func testTheForegroundEndsTheTaskAndExpirationEndsItAtOnce() async throws {
        let socket = try Socket(url: "ws://127.0.0.1:9/ws") { $0.disconnectInBackground() }
        defer { socket.close() }
        let tasks = FakeBackgroundTasks()
        let attachment = AppAttachment(socket: socket, phase: .active, backgroundTasks: tasks, monitorsNetwork: false)
        socket.connect()

        attachment.update(.background)
        XCTAssertEqual(tasks.running, [1])
        attachment.update(.inactive)
        XCTAssertEqual(tasks.ended, [1], "the return to the foreground ends it")

        attachment.update(.background)
        XCTAssertEqual(tasks.running, [2])
        tasks.expire(2)
        XCTAssertEqual(tasks.ended, [1, 2], "ended inside the expiration handler")
        XCTAssertFalse(attachment.machine.holdsBackgroundTask)
        attachment.update(.active)
        XCTAssertEqual(tasks.ended, [1, 2], "not ended twice")

        tasks.refuse = true
        attachment.update(.background)
        XCTAssertFalse(attachment.machine.holdsBackgroundTask, "refused: nothing held")
        attachment.detach()
        XCTAssertEqual(tasks.ended, [1, 2])
    }

    @MainActor
    func testATaskThatExpiresBeforeItsIdIsKnownIsEndedOnce() async throws {
        let socket = try Socket(url: "ws://127.0.0.1:9/ws") { $0.disconnectInBackground() }
        defer { socket.close() }
        let tasks = FakeBackgroundTasks()
        tasks.expireWhileBeginning = true
        let attachment = AppAttachment(socket: socket, phase: .active, backgroundTasks: tasks, monitorsNetwork: false)

        attachment.update(.background)
        XCTAssertEqual(tasks.begun, [1])
        XCTAssertEqual(tasks.ended, [1], "a task whose handler ran inside beginTask was never ended")
        XCTAssertFalse(attachment.machine.holdsBackgroundTask)
        attachment.update(.active)
        attachment.detach()
        XCTAssertEqual(tasks.ended, [1], "ended once")
    }

    @MainActor
    func testAViewGivenAnotherSocketFollowsIt() throws {
        let first = try Socket(url: "ws://127.0.0.1:9/ws")
        let second = try Socket(url: "ws://127.0.0.1:9/ws")
        defer {
            first.close()
            second.close()
        }
        var made: [AppAttachment] = []
        let make = { (socket: Socket, phase: AppPhase) -> AppAttachment in
            let attachment = AppAttachment(socket: socket, phase: phase, monitorsNetwork: false)
            made.append(attachment)
            return attachment
        }
        var slot = AttachmentSlot()
        slot.follow(first, phase: .active, make: make)
        slot.follow(first, phase: .active, make: make)
        XCTAssertEqual(made.count, 1, "the same socket keeps its attachment")
        XCTAssertTrue(slot.attachment?.isAttached(to: first) ?? false)

        slot.follow(second, phase: .background, make: make)
        XCTAssertEqual(made.count, 2, "another socket gets an attachment of its own")
        XCTAssertFalse(made[0].isAttached, "the old socket's attachment is detached")
        XCTAssertTrue(slot.attachment?.isAttached(to: second) ?? false)
        XCTAssertFalse(slot.attachment?.isAttached(to: first) ?? true)
        XCTAssertEqual(made[1].machine.reported, .background, "the new one is told the phase at once")

        slot.clear()
        XCTAssertFalse(made[1].isAttached)
        XCTAssertNil(slot.attachment)
    }

    @MainActor
    func testDetachIsIdempotentAndCloseOrReleaseDetach() async throws {
        let socket = try Socket(url: "ws://127.0.0.1:9/ws") { $0.disconnectInBackground() }
        let tasks = FakeBackgroundTasks()

        // detach(), twice.
        let first = AppAttachment(socket: socket, phase: .active, backgroundTasks: tasks, monitorsNetwork: false)
        first.update(.background)
        first.detach()
        first.detach()
        XCTAssertFalse(first.isAttached)
        XCTAssertEqual(tasks.ended, [1])

        // Released while holding a task: the task is ended.
        var second: AppAttachment? = AppAttachment(
            socket: socket, phase: .active, backgroundTasks: tasks, monitorsNetwork: false)
        second?.update(.background)
        XCTAssertEqual(tasks.running, [2])
        second = nil
        let releasedEnds = try await eventuallyOnMain(timeout: 5) { tasks.ended == [1, 2] }
        XCTAssertTrue(releasedEnds, "ended: \(tasks.ended)")

        // The socket closed: the attachment detaches itself and ends its task.
        let third = AppAttachment(socket: socket, phase: .active, backgroundTasks: tasks, monitorsNetwork: false)
        third.update(.background)
        socket.close()
        let detached = try await eventuallyOnMain(timeout: 5) { !third.isAttached }
        XCTAssertTrue(detached)
        XCTAssertEqual(tasks.ended, [1, 2, 3])

        // Attached to a closed socket: detached at once.
        let late = AppAttachment(socket: socket, phase: .active, backgroundTasks: tasks, monitorsNetwork: false)
        XCTAssertFalse(late.isAttached)
    }
}
