// SwiftUI: follow `scenePhase` with the app adapter (`AppAttachment`). Written by hand.

#if canImport(SwiftUI)
import SwiftUI

@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
extension AppPhase {
    /// The phase SwiftUI reports. `.inactive` stays `.inactive`, which is the foreground for the
    /// socket: a scene is inactive on its way in and out, under the app switcher or Control
    /// Center, and while a system alert is up.
    public init(_ phase: ScenePhase) {
        switch phase {
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

@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
extension AppAttachment {
    /// Report SwiftUI's phase: `.onChange(of: scenePhase) { attachment.update(scenePhase: $0) }`.
    /// At the level of the `App`, `scenePhase` is that of all its scenes together (background
    /// only once every scene is), which is what a socket of the whole app wants; in a view it is
    /// that view's scene.
    public func update(scenePhase phase: ScenePhase) {
        update(AppPhase(phase))
    }
}

@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
@available(iOSApplicationExtension, unavailable)
@available(tvOSApplicationExtension, unavailable)
extension View {
    /// Keep `socket` told where the app is while this view is on screen, following this scene's
    /// `scenePhase` (`.inactive` is the foreground; the phase at the first appearance is reported
    /// at once), with what `attachToApp()` adds: on iOS, tvOS and visionOS a background task held
    /// on the way to the background until the socket has closed gracefully or flushed its outbox
    /// (see `attachToApp()`), and an `NWPathMonitor` (`monitorsNetwork`). Detaches when the view
    /// goes away.
    ///
    /// Apply it once, to the root view of the app's scene:
    ///
    /// ```swift
    /// WindowGroup { ContentView().steadySocketLifecycle(model.socket) }
    /// ```
    ///
    /// With several windows (iPad, Mac), a scene can go to the background while another is on
    /// screen: use `attachToApp()` (the state of the whole app) or, in the `App`,
    /// `.onChange(of: scenePhase)` with `AppAttachment.update(scenePhase:)`.
    public func steadySocketLifecycle(_ socket: Socket, monitorsNetwork: Bool = true) -> some View {
        modifier(SocketLifecycleModifier(socket: socket, monitorsNetwork: monitorsNetwork))
    }
}

/// `.steadySocketLifecycle(socket)`: an `AppAttachment` fed with `scenePhase`.
@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
@available(iOSApplicationExtension, unavailable)
@available(tvOSApplicationExtension, unavailable)
struct SocketLifecycleModifier: ViewModifier {
    let socket: Socket
    let monitorsNetwork: Bool
    @Environment(\.scenePhase) private var scenePhase
    @State private var slot = AttachmentSlot()

    init(socket: Socket, monitorsNetwork: Bool) {
        self.socket = socket
        self.monitorsNetwork = monitorsNetwork
    }

    @MainActor
    @ViewBuilder
    func body(content: Content) -> some View {
        if #available(iOS 17.0, macOS 14.0, tvOS 17.0, watchOS 10.0, *) {
            content
                .onAppear { attach() }
                .onDisappear { slot.clear() }
                .onChange(of: ObjectIdentifier(socket)) { attach() }
                .onChange(of: scenePhase) { _, phase in
                    slot.attachment?.update(scenePhase: phase)
                }
        } else {
            content
                .onAppear { attach() }
                .onDisappear { slot.clear() }
                .onChange(of: ObjectIdentifier(socket)) { _ in attach() }
                .onChange(of: scenePhase) { phase in
                    slot.attachment?.update(scenePhase: phase)
                }
        }
    }

    /// Attach the socket given now (a view given another socket detaches the old one).
    @MainActor
    private func attach() {
        let monitorsNetwork = self.monitorsNetwork
        slot.follow(socket, phase: AppPhase(scenePhase)) { socket, phase in
            AppAttachment(
                socket: socket,
                phase: phase,
                backgroundTasks: Self.backgroundTasks(),
                monitorsNetwork: monitorsNetwork
            )
        }
    }

    @MainActor
    private static func backgroundTasks() -> (any BackgroundTaskRunner)? {
        #if canImport(UIKit) && !os(watchOS)
        return UIKitBackgroundTasks()
        #else
        return nil
        #endif
    }
}
#endif
