// The app adapter: one call (`socket.attachToApp()` on iOS, `.steadySocketLifecycle(socket)` in
// SwiftUI) that keeps a socket told where the app is, holds a background task while the socket
// finishes in the background, and reports the network. Written by hand.
//
// Three layers, so that the decisions are tested everywhere without UIKit:
//  - `AppLifecycleMachine`: the decisions, a plain value (phases, socket states and times in,
//    actions out; no UIKit, no clock, no threads);
//  - `AppAttachment`: carries the actions out (tells the socket, begins and ends background tasks
//    through a `BackgroundTaskRunner`, looks at the socket while a task is held) on the main actor;
//  - the platform glue feeds it: Lifecycle.swift (UIKit: the current `UIApplication` state,
//    notifications, `beginBackgroundTask`; Network: `NWPathMonitor`), SwiftUILifecycle.swift
//    (`ScenePhase`).

import Foundation

// MARK: - Phases

/// Where the app is, as UIKit (`UIApplication.State`) and SwiftUI (`ScenePhase`) say it.
public enum AppPhase: Sendable, Hashable, CustomStringConvertible {
    /// In the foreground, receiving events.
    case active
    /// In the foreground, not receiving events: launching, the app switcher, Control Center or
    /// Notification Center pulled down, an incoming call's banner, a system alert. The app is
    /// still on screen and keeps running: **not** background.
    case inactive
    /// Off screen. iOS suspends the app a few seconds later, or when its background tasks end.
    case background

    /// What the socket is told: `.foreground` for `.active` and `.inactive`, `.background` for
    /// `.background`.
    public var appState: AppState {
        switch self {
        case .active, .inactive:
            return .foreground
        case .background:
            return .background
        }
    }

    public var description: String {
        switch self {
        case .active:
            return "active"
        case .inactive:
            return "inactive"
        case .background:
            return "background"
        }
    }
}

// MARK: - Options for an app

extension SocketConfig {
    /// The background grace that `disconnectInBackground()` sets: 20 s.
    ///
    /// iOS gives a background task about 30 s (not a documented figure: read
    /// `UIApplication.backgroundTimeRemaining`; it was 180 s before iOS 13), and calls its
    /// expiration handler a little before the end. The app adapter holds a background task for
    /// the grace plus 3 s for the close (`AppLifecycleMachine.Timing.closeAllowance`), so 20 s
    /// ends it by about 23 s, several seconds inside what iOS gives. The native default (30 s)
    /// does not fit: iOS would suspend the app before the graceful close, and the server would
    /// see the connection die only at its own timeout. 20 s still covers a short trip to another
    /// app (answer a call, copy a code) without a reconnect, and gives the outbox time to flush
    /// over a slow network.
    public static let recommendedBackgroundGrace: TimeInterval = 20

    /// In the background, keep the connection for `grace`, then close it gracefully and stay
    /// `.suspended` until the app returns to the foreground, which reconnects at once (policy
    /// `.disconnectAfterGrace`). The outbox is kept: what was not acknowledged is sent after the
    /// reconnect. Use it with `attachToApp()`, which holds a background task for the grace, so
    /// that iOS lets the app run until the close.
    ///
    /// ```swift
    /// let socket = try Socket(url: "wss://chat.example.com/ws") { $0.disconnectInBackground() }
    /// ```
    public mutating func disconnectInBackground(after grace: TimeInterval = SocketConfig.recommendedBackgroundGrace) {
        background = .disconnectAfterGrace
        backgroundGraceMs = milliseconds(grace)
    }
}

// MARK: - Decisions

/// The decisions of the app adapter, as a plain value: what to tell the socket and when to hold
/// a background task, from the app's phases and what the socket reports. No UIKit, no clock, no
/// threads: the times are given (`now`, seconds on any monotonic clock), so every rule is tested
/// with XCTest on every platform. `AppAttachment` carries the actions out.
///
/// The rules:
/// - Attached: the socket is told the current phase at once (`.background` too: a socket made
///   during a background launch — a push, a background fetch — must not think it is in the
///   foreground). No background task is started then: a background launch runs on the time its
///   own handler was given.
/// - `.inactive` is the foreground: nothing is told when the app only goes between `.active` and
///   `.inactive`.
/// - To the background: a background task is begun, then the socket is told `.background`.
/// - While the task is held, it ends once the socket has finished, after `linger` (for the close
///   frame to be written): with `.disconnectAfterGrace`, when it is `.suspended` (the graceful
///   close after the grace), `.closed`, `.failed` or `.idle`; with `.keepAlive`, also as soon as
///   the outbox is empty. It ends at the latest `timing.hold` after the background entry, when
///   iOS says the time is up (expiration), when the app returns to the foreground, or when the
///   adapter is detached.
/// - Back to the foreground: the socket is told `.foreground` (it reconnects or probes at once).
public struct AppLifecycleMachine: Sendable, Hashable {
    /// How long a background task may be held.
    public struct Timing: Sendable, Hashable {
        /// The socket's grace with `.disconnectAfterGrace`, in seconds; nil for `.keepAlive` (the
        /// native default: the connection is kept, and dies with the suspension).
        public var disconnectAfter: TimeInterval?
        /// Held after the grace for the graceful close to complete: 3 s.
        public var closeAllowance: TimeInterval
        /// With `.keepAlive`, the longest the task is held for the outbox to be acknowledged: 20 s.
        public var flushLimit: TimeInterval
        /// Never held longer than this: 25 s, inside the about 30 s iOS gives a background task.
        public var maxHold: TimeInterval
        /// Held on after the socket finished, for its close frame to be written: 0.5 s.
        public var linger: TimeInterval

        public init(
            disconnectAfter: TimeInterval?,
            closeAllowance: TimeInterval = 3,
            flushLimit: TimeInterval = 20,
            maxHold: TimeInterval = 25,
            linger: TimeInterval = 0.5
        ) {
            self.disconnectAfter = disconnectAfter
            self.closeAllowance = closeAllowance
            self.flushLimit = flushLimit
            self.maxHold = maxHold
            self.linger = linger
        }

        /// The timing for a socket made with `config` (its background policy, with the native
        /// default grace when it names none), with the other values at their defaults.
        public init(config: SocketConfig) {
            let grace = backgroundDisconnectAfterMs(config: config)
            self.init(disconnectAfter: grace.map { TimeInterval($0) / 1_000 })
        }

        /// The longest a background task is held: the grace plus `closeAllowance`, or
        /// `flushLimit`; never more than `maxHold`. With a grace longer than
        /// `maxHold - closeAllowance` the task ends before the graceful close: iOS then
        /// suspends the app with the connection still open.
        public var hold: TimeInterval {
            let wanted = disconnectAfter.map { $0 + closeAllowance } ?? flushLimit
            return min(wanted, maxHold)
        }
    }

    /// What to do.
    public enum Action: Sendable, Hashable {
        /// Tell the socket (`Socket.setAppState`).
        case report(AppState)
        /// Ask the OS for time to finish in the background (`UIApplication.beginBackgroundTask`).
        case beginBackgroundTask
        /// End the background task (`UIApplication.endBackgroundTask`).
        case endBackgroundTask
    }

    private enum Stage: Sendable, Hashable {
        case new
        case attached
        case detached
    }

    public let timing: Timing
    private var stage = Stage.new
    /// What the socket was told last; nil before `attach`.
    public private(set) var reported: AppState?
    /// True from `.beginBackgroundTask` until `.endBackgroundTask` (or `backgroundTaskRefused()`).
    public private(set) var holdsBackgroundTask = false
    /// While a task is held: when it ends at the latest.
    public private(set) var deadline: TimeInterval?
    /// When the task ends if the socket stays finished (set when it was first seen finished).
    private var settleAt: TimeInterval?

    public init(timing: Timing) {
        self.timing = timing
    }

    /// True between `attach` and `detach`.
    public var isAttached: Bool { stage == .attached }

    /// Start: the socket is told `phase` now. Once only; later calls do nothing.
    public mutating func attach(_ phase: AppPhase) -> [Action] {
        guard stage == .new else { return [] }
        stage = .attached
        reported = phase.appState
        return [.report(phase.appState)]
    }

    /// The app's phase changed (or was reported again: repeats do nothing).
    public mutating func update(_ phase: AppPhase, now: TimeInterval) -> [Action] {
        guard stage == .attached else { return [] }
        let state = phase.appState
        guard state != reported else { return [] }
        reported = state
        switch state {
        case .background:
            holdsBackgroundTask = true
            deadline = now + timing.hold
            settleAt = nil
            return [.beginBackgroundTask, .report(.background)]
        case .foreground:
            let holding = holdsBackgroundTask
            releaseTask()
            return holding ? [.report(.foreground), .endBackgroundTask] : [.report(.foreground)]
        }
    }

    /// What the socket says while a background task is held (`AppAttachment` tells it every
    /// change of the state or the outbox, and again at `nextDue`).
    public mutating func observe(_ state: SocketState, outboxLength: UInt64, now: TimeInterval) -> [Action] {
        guard stage == .attached, holdsBackgroundTask else { return [] }
        if let deadline, now >= deadline {
            releaseTask()
            return [.endBackgroundTask]
        }
        guard isFinished(state, outboxLength: outboxLength) else {
            // Busy again (the app called connect(), say): wait for it to finish again.
            settleAt = nil
            return []
        }
        let settle = settleAt ?? now + timing.linger
        settleAt = settle
        guard now >= settle else { return [] }
        releaseTask()
        return [.endBackgroundTask]
    }

    /// When `observe` must be called again even if the socket says nothing new: the end of the
    /// hold, or of the linger after the socket finished. Nil while no task is held.
    public var nextDue: TimeInterval? {
        guard holdsBackgroundTask else { return nil }
        return [deadline, settleAt].compactMap { $0 }.min()
    }

    /// The OS refused the background task (`beginBackgroundTask` returned `.invalid`), or there is
    /// no such thing on this platform: nothing to end.
    public mutating func backgroundTaskRefused() {
        releaseTask()
    }

    /// The OS says the background time is up: the task must be ended at once.
    public mutating func backgroundTaskExpired() -> [Action] {
        guard holdsBackgroundTask else { return [] }
        releaseTask()
        return [.endBackgroundTask]
    }

    /// Stop: a held task is ended; nothing is told after this. The socket keeps the state it was
    /// told last.
    public mutating func detach() -> [Action] {
        let holding = holdsBackgroundTask
        stage = .detached
        releaseTask()
        return holding ? [.endBackgroundTask] : []
    }

    /// Whether the socket has nothing left to do in the background that a background task helps.
    public func isFinished(_ state: SocketState, outboxLength: UInt64) -> Bool {
        switch state {
        case .suspended, .closed, .failed, .idle:
            return true
        case .open, .connecting, .reconnecting, .waitingForNetwork, .closing:
            // With .disconnectAfterGrace the graceful close is what the task waits for; with
            // .keepAlive it only waits for the outbox to be acknowledged.
            return timing.disconnectAfter == nil && outboxLength == 0
        }
    }

    private mutating func releaseTask() {
        holdsBackgroundTask = false
        deadline = nil
        settleAt = nil
    }
}

// MARK: - Background tasks

/// Starts and ends the OS's "let me finish before suspending me": `UIKitBackgroundTasks`
/// (`UIApplication.beginBackgroundTask`) on iOS, tvOS and visionOS; a fake in tests.
@MainActor
public protocol BackgroundTaskRunner: AnyObject {
    /// Begin a background task; nil when the OS refuses. `onExpiry` is called on the main actor
    /// when the time is up; the task must be ended before it returns (`AppAttachment` does).
    func beginTask(named name: String, onExpiry: @escaping @MainActor @Sendable () -> Void) -> Int?
    /// End a task `beginTask` returned.
    func endTask(_ id: Int)
}

/// One background task, ended exactly once: by the attachment, by its expiration handler, or
/// when the attachment is released — also when the expiration handler runs before
/// `beginTask` has returned the task's id (iOS may call it from inside `beginBackgroundTask`
/// when no background time is left).
@MainActor
final class HeldBackgroundTask {
    private let runner: any BackgroundTaskRunner
    private var id: Int?
    /// `end()` was called: before the id is known, the task is ended as soon as it is.
    private var ended = false

    init(runner: any BackgroundTaskRunner) {
        self.runner = runner
    }

    /// False when the OS refused, or when the task ended (expired) before `beginTask` returned;
    /// either way nothing is held.
    func start(name: String, onExpiry: @escaping @MainActor @Sendable () -> Void) -> Bool {
        guard let given = runner.beginTask(named: name, onExpiry: onExpiry) else { return false }
        guard !ended else {
            runner.endTask(given)
            return false
        }
        id = given
        return true
    }

    /// End it; later calls do nothing.
    func end() {
        ended = true
        guard let id else { return }
        self.id = nil
        runner.endTask(id)
    }
}

// MARK: - The adapter

/// Keeps a socket told where the app is, from the moment it is made until `detach()`, the
/// release of the attachment, or `close()` of the socket, whichever comes first.
///
/// Made by `socket.attachToApp()` (UIKit) or `.steadySocketLifecycle(socket)` (SwiftUI); make one
/// yourself to feed other sources (`update(_:)`, `follow(_:on:as:)`) or another
/// `BackgroundTaskRunner`. It:
/// - tells the socket the phase it is given at once, and every change after (`.inactive` is the
///   foreground);
/// - on the way to the background, begins a background task and holds it until the socket has
///   closed gracefully (`.disconnectAfterGrace`) or acknowledged its outbox (`.keepAlive`), for
///   at most `timing.hold` (23 s with `disconnectInBackground()`), and ends it at once when iOS
///   says the time is up. It follows the socket's state and outbox length with `socket.watch()`
///   (it does not read `events`: the app is the one consumer of those), and ends with the
///   socket's close;
/// - keeps an `NWPathMonitor` reporting to the socket (`monitorNetwork()`), where the Network
///   framework exists, unless `monitorsNetwork` is false.
///
/// It keeps no strong reference to the socket, and lives on the main actor, where UIKit calls
/// it. `detach()` is idempotent; `close()` of the socket detaches it too.
@MainActor
public final class AppAttachment {
    /// The decisions so far.
    public private(set) var machine: AppLifecycleMachine
    private weak var socket: Socket?
    private let runner: (any BackgroundTaskRunner)?
    /// What `detach()` and the release of the attachment undo, from any thread.
    private let links = AttachmentLinks()
    private var held: HeldBackgroundTask?
    /// What the socket said last, for a look again at the machine's `nextDue`.
    private var status: SocketStatus?

    /// Attach `socket`, telling it `phase` now.
    /// - Parameters:
    ///   - phase: where the app is now (`AppPhase(UIApplication.shared.applicationState)`).
    ///   - backgroundTasks: who begins and ends background tasks; nil: none (macOS, tests).
    ///   - monitorsNetwork: also run an `NWPathMonitor` for the socket (where Network exists).
    ///   - timing: how long a background task may be held; by default from `socket.config`.
    public init(
        socket: Socket,
        phase: AppPhase,
        backgroundTasks: (any BackgroundTaskRunner)? = nil,
        monitorsNetwork: Bool = true,
        timing: AppLifecycleMachine.Timing? = nil
    ) {
        self.socket = socket
        runner = backgroundTasks
        machine = AppLifecycleMachine(timing: timing ?? AppLifecycleMachine.Timing(config: socket.config))

        let actions = machine.attach(phase)
        perform(actions)

        #if canImport(Network)
        if monitorsNetwork {
            let monitoring = NetworkMonitoring(socket.monitorNetwork())
            links.add { monitoring.cancel() }
        }
        #endif

        let statuses = socket.watch()
        let watching = Task { @MainActor [weak self] in
            for await status in statuses {
                guard let self else { return }
                self.observe(status)
            }
            // The watch ended: the socket was closed (or this task cancelled by `detach()`).
            self?.detach()
        }
        links.add { watching.cancel() }
        if socket.state == .closed {
            detach()
        }
    }

    deinit {
        links.release()
    }

    /// True until `detach()` (or the socket's `close()`).
    public var isAttached: Bool { machine.isAttached }

    /// True while attached to this very socket.
    public func isAttached(to socket: Socket) -> Bool {
        isAttached && self.socket === socket
    }

    /// The app's phase now (repeats do nothing).
    public func update(_ phase: AppPhase) {
        let actions = machine.update(phase, now: Self.now())
        perform(actions)
    }

    /// Report `phase` whenever `center` posts `name` (UIKit posts its lifecycle notifications on
    /// the main thread; from another thread the report follows on the main actor). Stops with
    /// the attachment.
    public func follow(_ name: Notification.Name, on center: NotificationCenter = .default, as phase: AppPhase) {
        let token = center.addObserver(forName: name, object: nil, queue: nil) { [weak self] _ in
            guard let self else { return }
            onMainActor { self.update(phase) }
        }
        let observation = LifecycleObservation(center: center, tokens: [token])
        links.add { observation.cancel() }
    }

    /// Stop: a held background task is ended, the notifications and the network monitor stop,
    /// nothing more is told to the socket (it keeps what it was told last). Calling it again
    /// does nothing.
    public func detach() {
        let actions = machine.detach()
        perform(actions)
        links.release()
    }

    // MARK: Carrying out

    private func perform(_ actions: [AppLifecycleMachine.Action]) {
        for action in actions {
            switch action {
            case let .report(state):
                socket?.setAppState(state)
            case .beginBackgroundTask:
                beginTask()
            case .endBackgroundTask:
                endTask()
            }
        }
    }

    private func beginTask() {
        guard let runner else {
            machine.backgroundTaskRefused()
            return
        }
        let task = HeldBackgroundTask(runner: runner)
        let started = task.start(name: "steadyws: finish in the background") { [weak self] in
            // Time is up: end the task before returning (iOS terminates an app that holds one
            // past its time), then forget it.
            task.end()
            self?.expired(task)
        }
        guard started else {
            // Refused, or expired before it was given (then `start` ended it already).
            machine.backgroundTaskRefused()
            return
        }
        held = task
        links.hold(task)
        if let status {
            observe(status)
        }
    }

    private func endTask() {
        held?.end()
        held = nil
        links.hold(nil)
        links.wake(nil)
    }

    private func expired(_ task: HeldBackgroundTask) {
        guard task === held else { return }
        let actions = machine.backgroundTaskExpired()
        perform(actions)
    }

    /// The socket's news (a change of state or outbox length), or a look again at `nextDue`.
    private func observe(_ status: SocketStatus) {
        self.status = status
        if status.state == .closed {
            detach()
            return
        }
        perform(machine.observe(status.state, outboxLength: status.outboxLen, now: Self.now()))
        wakeAtNextDue()
    }

    /// The machine's deadlines pass without news from the socket: look again then.
    private func wakeAtNextDue() {
        guard let due = machine.nextDue else {
            links.wake(nil)
            return
        }
        let delay = UInt64(max(due - Self.now(), 0) * 1_000_000_000) + 1_000_000
        let wake = Task { @MainActor [weak self] in
            try? await Task.sleep(nanoseconds: delay)
            guard !Task.isCancelled, let self, let status = self.status else { return }
            self.observe(status)
        }
        links.wake(wake)
    }

    private static func now() -> TimeInterval {
        ProcessInfo.processInfo.systemUptime
    }
}

/// The attachment a view keeps for the socket it is given (`.steadySocketLifecycle(socket)`):
/// the same one while the socket is the same, a new one, the old one detached, when the view is
/// given another socket. Without UIKit or SwiftUI, so the rule is tested everywhere.
@MainActor
struct AttachmentSlot {
    private(set) var attachment: AppAttachment?

    /// Keep `socket` attached, told `phase`; `make` attaches it when the attachment held is not
    /// for this socket (or was detached), after detaching the old one.
    mutating func follow(
        _ socket: Socket,
        phase: AppPhase,
        make: (Socket, AppPhase) -> AppAttachment
    ) {
        if let attachment, attachment.isAttached(to: socket) {
            attachment.update(phase)
            return
        }
        attachment?.detach()
        attachment = make(socket, phase)
    }

    /// Detach and forget the attachment.
    mutating func clear() {
        attachment?.detach()
        attachment = nil
    }
}

/// What an attachment undoes when it is detached or released: the notification observers, the
/// network monitor, the watch of the socket, the wake at the machine's next deadline, a held
/// background task. Released
/// once, from any thread (a deinit is not on the main actor).
final class AttachmentLinks: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var released = false
    private var cancellers: [@Sendable () -> Void] = []
    private var waking: Task<Void, Never>?
    private var held: HeldBackgroundTask?

    /// Run `cancel` at the release (at once when released already).
    func add(_ cancel: @escaping @Sendable () -> Void) {
        lock.lock()
        guard !released else {
            lock.unlock()
            cancel()
            return
        }
        cancellers.append(cancel)
        lock.unlock()
    }

    /// The task that wakes the attachment at the machine's next deadline (nil: none); the
    /// previous one is cancelled.
    func wake(_ task: Task<Void, Never>?) {
        lock.lock()
        let previous = waking
        waking = released ? nil : task
        let refused = released ? task : nil
        lock.unlock()
        previous?.cancel()
        refused?.cancel()
    }

    /// The background task to end at the release (nil: none).
    func hold(_ task: HeldBackgroundTask?) {
        lock.lock()
        held = released ? nil : task
        lock.unlock()
    }

    func release() {
        lock.lock()
        guard !released else {
            lock.unlock()
            return
        }
        released = true
        let cancels = cancellers
        cancellers = []
        let waking = self.waking
        self.waking = nil
        let held = self.held
        self.held = nil
        lock.unlock()
        waking?.cancel()
        for cancel in cancels {
            cancel()
        }
        if let held {
            onMainActor { held.end() }
        }
    }
}

/// Run `body` on the main actor: at once when called on the main thread (UIKit's notifications,
/// a release there), else on the main actor's next turn.
func onMainActor(_ body: @escaping @MainActor @Sendable () -> Void) {
    if Thread.isMainThread {
        MainActor.assumeIsolated(body)
    } else {
        Task { @MainActor in body() }
    }
}
