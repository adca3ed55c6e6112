// Platform hooks: the one-call app adapter (`attachToApp()`: the current UIKit application state,
// its notifications, background tasks, reachability), and the pieces it is made of. The
// decisions live in AppLifecycle.swift, without UIKit. Written by hand.

import Foundation

/// Keeps reporting notifications to a socket until cancelled or released.
public final class LifecycleObservation: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var tokens: [NSObjectProtocol]
    private let center: NotificationCenter

    init(center: NotificationCenter, tokens: [NSObjectProtocol]) {
        self.center = center
        self.tokens = tokens
    }

    /// Stop reporting.
    public func cancel() {
        lock.lock()
        let removed = tokens
        tokens = []
        lock.unlock()
        for token in removed {
            center.removeObserver(token)
        }
    }

    deinit {
        cancel()
    }
}

#if canImport(UIKit) && !os(watchOS)
import UIKit

extension AppPhase {
    /// The phase of UIKit's application state (`.inactive` stays `.inactive`: the foreground).
    public init(_ state: UIApplication.State) {
        switch state {
        case .active:
            self = .active
        case .inactive:
            self = .inactive
        case .background:
            self = .background
        @unknown default:
            self = .inactive
        }
    }
}

/// UIKit's background tasks, for `AppAttachment`: `UIApplication.beginBackgroundTask(withName:
/// expirationHandler:)` and `endBackgroundTask(_:)`. Not in app extensions (they have no
/// `UIApplication.shared`).
@available(iOSApplicationExtension, unavailable)
@available(tvOSApplicationExtension, unavailable)
@MainActor
public final class UIKitBackgroundTasks: BackgroundTaskRunner {
    public init() {}

    public func beginTask(named name: String, onExpiry: @escaping @MainActor @Sendable () -> Void) -> Int? {
        // UIKit calls the handler on the main thread, shortly before the time is up.
        let id = UIApplication.shared.beginBackgroundTask(withName: name) {
            onExpiry()
        }
        return id == .invalid ? nil : id.rawValue
    }

    public func endTask(_ id: Int) {
        UIApplication.shared.endBackgroundTask(UIBackgroundTaskIdentifier(rawValue: id))
    }
}

extension Socket {
    /// Keep this socket told where the app is, in one call; keep the returned attachment for as
    /// long as it should (it detaches when released, on `detach()`, or when the socket is closed).
    ///
    /// ```swift
    /// let socket = try Socket(url: "wss://chat.example.com/ws") { $0.disconnectInBackground() }
    /// let attachment = socket.attachToApp()     // on the main actor, e.g. in didFinishLaunching
    /// socket.connect()
    /// ```
    ///
    /// - Reports the application state **now** (`UIApplication.shared.applicationState`): a
    ///   socket made during a background launch (a push, a background fetch) is told
    ///   `.background` at once. Then `didEnterBackground` (`.background`), `willEnterForeground`
    ///   and `didBecomeActive` (`.foreground`); `.inactive` is the foreground.
    /// - On the way to the background, begins a background task
    ///   (`UIApplication.beginBackgroundTask`) so that iOS lets the app run while the outbox is
    ///   flushed and, with `.disconnectAfterGrace`, the connection is closed gracefully after the
    ///   grace. The task ends when the socket is `.suspended` / `.closed` (or, with
    ///   `.keepAlive`, its outbox is empty), at the latest 23 s after the background entry with
    ///   `disconnectInBackground()` (grace + 3 s, never more than 25 s), at once when iOS says
    ///   the time is up, and on the return to the foreground. A grace longer than 22 s (the
    ///   native default is 30 s) does not fit in the about 30 s iOS gives: set it with
    ///   `SocketConfig.disconnectInBackground()` (20 s).
    /// - Runs an `NWPathMonitor` for the socket (`monitorNetwork()`: the current path at once,
    ///   then every change), unless `monitorsNetwork` is false.
    ///
    /// Everything happens on the main actor, where UIKit posts; no strong reference to the
    /// socket is kept. SwiftUI: this works in SwiftUI apps too (call it where the socket is made,
    /// in the app's model); `.steadySocketLifecycle(socket)` follows `scenePhase` instead.
    @MainActor
    @available(iOSApplicationExtension, unavailable)
    @available(tvOSApplicationExtension, unavailable)
    public func attachToApp(
        center: NotificationCenter = .default,
        monitorsNetwork: Bool = true
    ) -> AppAttachment {
        let attachment = AppAttachment(
            socket: self,
            phase: AppPhase(UIApplication.shared.applicationState),
            backgroundTasks: UIKitBackgroundTasks(),
            monitorsNetwork: monitorsNetwork
        )
        attachment.follow(UIApplication.didEnterBackgroundNotification, on: center, as: .background)
        attachment.follow(UIApplication.willEnterForegroundNotification, on: center, as: .inactive)
        attachment.follow(UIApplication.didBecomeActiveNotification, on: center, as: .active)
        return attachment
    }

    /// Report `didEnterBackground` / `willEnterForeground` to the socket. Keep the returned
    /// observation for as long as the reports should go on.
    ///
    /// Prefer `attachToApp()`: this reports changes only (never the state at the call, so a
    /// socket made during a background launch is taken for a foreground one) and holds no
    /// background task, so the graceful close of `.disconnectAfterGrace` rarely runs before iOS
    /// suspends the app (about 5 s after `didEnterBackground` without a background task).
    ///
    /// The reports are made on the thread that posts the notifications (UIKit: the main thread);
    /// `setAppState` only hands the hint to the native socket and returns, so it never holds that
    /// thread up. The observation keeps no strong reference to the socket.
    @MainActor
    public func observeAppLifecycle(center: NotificationCenter = .default) -> LifecycleObservation {
        let background = center.addObserver(
            forName: UIApplication.didEnterBackgroundNotification,
            object: nil,
            queue: nil
        ) { [weak self] _ in
            self?.setAppState(.background)
        }
        let foreground = center.addObserver(
            forName: UIApplication.willEnterForegroundNotification,
            object: nil,
            queue: nil
        ) { [weak self] _ in
            self?.setAppState(.foreground)
        }
        return LifecycleObservation(center: center, tokens: [background, foreground])
    }
}
#endif

#if canImport(Network)
import Network

extension Socket {
    /// Start an `NWPathMonitor` that reports reachability to the socket: the current path at
    /// start (so the socket knows the interface, and a later switch, Wi-Fi to cellular say, is
    /// recognised as one), then every change (no attempts while there is no route; an attempt or
    /// a probe at once when one returns or the interface changes). Reports are made on `queue`
    /// (never the main queue by default); `setNetwork` returns at once. Call `cancel()` on the
    /// returned monitor to stop; it keeps no strong reference to the socket. `attachToApp()`
    /// runs one.
    public func monitorNetwork(queue: DispatchQueue = DispatchQueue(label: "steadyws.network")) -> NWPathMonitor {
        let monitor = NWPathMonitor()
        let last = LastReported()
        monitor.pathUpdateHandler = { [weak self] path in
            let status = networkStatus(of: path)
            guard last.changed(to: status) else { return }
            self?.setNetwork(status)
        }
        monitor.start(queue: queue)
        return monitor
    }
}

/// A running `NWPathMonitor`, cancelled from any thread (an attachment's release).
final class NetworkMonitoring: @unchecked Sendable {
    private let monitor: NWPathMonitor

    init(_ monitor: NWPathMonitor) {
        self.monitor = monitor
    }

    func cancel() {
        monitor.cancel()
    }
}

/// The status last reported: the first one always, then changes only.
private final class LastReported: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var status: NetworkStatus?

    func changed(to new: NetworkStatus) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let previous = status
        status = new
        return previous != new
    }
}

private func networkStatus(of path: NWPath) -> NetworkStatus {
    guard path.status == .satisfied else {
        return .unavailable
    }
    if path.usesInterfaceType(.wifi) {
        return .available(interface: "wifi")
    }
    if path.usesInterfaceType(.cellular) {
        return .available(interface: "cellular")
    }
    if path.usesInterfaceType(.wiredEthernet) {
        return .available(interface: "ethernet")
    }
    return .available(interface: nil)
}
#endif
