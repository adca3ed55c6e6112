// Platform hooks: report the app lifecycle (UIKit) and reachability (Network framework) to the
// socket, so it disconnects in the background and reconnects at once when the app or the network
// returns. Written by hand.

import Foundation

#if canImport(UIKit) && !os(watchOS)
import UIKit

/// Keeps reporting UIKit's background/foreground notifications until cancelled or released.
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

extension SteadySocket {
    /// Report `didEnterBackground` / `willEnterForeground` to the socket. Keep the returned
    /// observation for as long as the reports should go on.
    ///
    /// What the socket does in the background is `SocketOptions.background`: keep the connection
    /// (checked with a probe on return) or disconnect after `backgroundGraceMs`. The reports are
    /// made on the thread that posts the notifications (UIKit: the main thread); `setAppState`
    /// only hands the hint to the native socket and returns, so it never holds that thread up.
    /// The observation keeps no strong reference to the socket.
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

extension SteadySocket {
    /// Start an `NWPathMonitor` that reports reachability changes to the socket (no attempts
    /// while there is no route; an attempt or a probe at once when one returns or the interface
    /// changes). Reports are made on `queue` (never the main queue by default); `setNetwork` returns
    /// at once. Call `cancel()` on the returned monitor to stop; it keeps no strong reference to
    /// the socket.
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

/// The status last reported. The socket starts out assuming a route exists, so the monitor's
/// first report is passed on only when it says otherwise.
private final class LastReported: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var status: NetworkStatus?

    func changed(to new: NetworkStatus) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let previous = status
        status = new
        guard let previous else {
            return new == .unavailable
        }
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
