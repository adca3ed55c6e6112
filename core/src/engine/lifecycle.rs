//! Hints from the platform: app foreground/background and network reachability.
//!
//! Phones suspend sockets without closing them (iOS keeps a backgrounded socket "open" for
//! minutes), and the OS knows about network loss long before a heartbeat would. These hints let
//! the engine act on that knowledge; this module only tracks them and classifies changes.

use super::config::BackgroundPolicy;
use super::time::Instant;

/// Whether the app is visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppState {
    /// Visible and running.
    Foreground,
    /// In the background; the OS may suspend it at any moment.
    Background,
}

/// What the OS says about the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkStatus {
    /// A route exists, over the named interface (e.g. `"wifi"`, `"cellular"`) if known.
    Available {
        /// The interface, if the platform tells.
        interface: Option<String>,
    },
    /// No route: attempts would only burn retries and battery.
    Unavailable,
}

/// A change of network worth acting on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkChange {
    /// Nothing that matters.
    None,
    /// The network went away.
    Lost,
    /// It came back after being unavailable.
    Returned,
    /// Still available, but over another interface: sockets on the old one are likely dead.
    InterfaceChanged,
}

/// The platform hints received so far, and the background grace timer.
#[derive(Debug)]
pub struct Lifecycle {
    app: AppState,
    network: NetworkStatus,
    suspend_at: Option<Instant>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            app: AppState::Foreground,
            network: NetworkStatus::Available { interface: None },
            suspend_at: None,
        }
    }
}

impl Lifecycle {
    /// Whether the app is in the background.
    pub fn in_background(&self) -> bool {
        self.app == AppState::Background
    }

    /// Whether the OS reports a usable network.
    pub fn network_available(&self) -> bool {
        self.network != NetworkStatus::Unavailable
    }

    /// Record the app state. Returns whether it changed. Going to the background under
    /// `DisconnectAfter(grace)` arms the suspend timer; coming back disarms it.
    pub fn set_app_state(&mut self, now: Instant, app: AppState, policy: BackgroundPolicy) -> bool {
        if app == self.app {
            return false;
        }
        self.app = app;
        self.suspend_at = match (app, policy) {
            (AppState::Background, BackgroundPolicy::DisconnectAfter(grace)) => Some(now + grace),
            _ => None,
        };
        true
    }

    /// Record the network and classify the change.
    ///
    /// A route reported without its interface keeps the interface already known: platforms
    /// name a new default network a moment after announcing it (Android in the capabilities
    /// that follow), and forgetting the old name would hide the switch from wifi to cellular
    /// that comes with the name.
    pub fn set_network(&mut self, network: NetworkStatus) -> NetworkChange {
        let network = match (&self.network, network) {
            (
                NetworkStatus::Available {
                    interface: Some(known),
                },
                NetworkStatus::Available { interface: None },
            ) => NetworkStatus::Available {
                interface: Some(known.clone()),
            },
            (_, network) => network,
        };
        let previous = std::mem::replace(&mut self.network, network);
        match (&previous, &self.network) {
            (NetworkStatus::Unavailable, NetworkStatus::Unavailable) => NetworkChange::None,
            (_, NetworkStatus::Unavailable) => NetworkChange::Lost,
            (NetworkStatus::Unavailable, _) => NetworkChange::Returned,
            (
                NetworkStatus::Available {
                    interface: Some(old),
                },
                NetworkStatus::Available {
                    interface: Some(new),
                },
            ) if old != new => NetworkChange::InterfaceChanged,
            _ => NetworkChange::None,
        }
    }

    /// When the background grace period ends, if it is running.
    pub fn suspend_at(&self) -> Option<Instant> {
        self.suspend_at
    }

    /// Whether the grace period has ended at `now`; disarms the timer when it has.
    pub fn take_suspend_due(&mut self, now: Instant) -> bool {
        let due = self.suspend_at.is_some_and(|at| at <= now);
        if due {
            self.suspend_at = None;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn available(interface: &str) -> NetworkStatus {
        NetworkStatus::Available {
            interface: Some(interface.into()),
        }
    }

    #[test]
    fn network_changes_are_classified() {
        let mut lifecycle = Lifecycle::default();
        assert_eq!(
            lifecycle.set_network(available("wifi")),
            NetworkChange::None
        );
        assert_eq!(
            lifecycle.set_network(available("cellular")),
            NetworkChange::InterfaceChanged
        );
        assert_eq!(
            lifecycle.set_network(NetworkStatus::Unavailable),
            NetworkChange::Lost
        );
        assert!(!lifecycle.network_available());
        assert_eq!(
            lifecycle.set_network(NetworkStatus::Unavailable),
            NetworkChange::None
        );
        assert_eq!(
            lifecycle.set_network(available("wifi")),
            NetworkChange::Returned
        );
        assert_eq!(
            lifecycle.set_network(NetworkStatus::Available { interface: None }),
            NetworkChange::None
        );
        // The unnamed report kept "wifi": the name that follows is still seen as a switch.
        assert_eq!(
            lifecycle.set_network(available("cellular")),
            NetworkChange::InterfaceChanged
        );
        // After a loss, an unnamed route is news, and the next name is not a switch.
        lifecycle.set_network(NetworkStatus::Unavailable);
        assert_eq!(
            lifecycle.set_network(NetworkStatus::Available { interface: None }),
            NetworkChange::Returned
        );
        assert_eq!(
            lifecycle.set_network(available("wifi")),
            NetworkChange::None
        );
    }

    #[test]
    fn background_grace_timer_follows_the_policy() {
        let mut lifecycle = Lifecycle::default();
        let policy = BackgroundPolicy::DisconnectAfter(Duration::from_secs(30));
        assert!(!lifecycle.set_app_state(Instant::ZERO, AppState::Foreground, policy));
        assert!(lifecycle.set_app_state(Instant::ZERO, AppState::Background, policy));
        assert_eq!(lifecycle.suspend_at(), Some(Instant::from_millis(30_000)));
        assert!(!lifecycle.take_suspend_due(Instant::from_millis(29_999)));
        assert!(lifecycle.take_suspend_due(Instant::from_millis(30_000)));
        assert_eq!(lifecycle.suspend_at(), None);
        lifecycle.set_app_state(Instant::ZERO, AppState::Foreground, policy);
        lifecycle.set_app_state(
            Instant::ZERO,
            AppState::Background,
            BackgroundPolicy::KeepAlive,
        );
        assert_eq!(lifecycle.suspend_at(), None);
    }
}
