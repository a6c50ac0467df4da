//! Network topology: pods (a hub and its hubbies, grouped by function) and
//! stations (pods grouped by location). A device that is hub of one pod and
//! hubby in another is a hybrid (mesh) node.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use alloc::collections::{BTreeMap, BTreeSet};

use crate::collections::HashMap;

use serde::Serialize;

/// Default number of devices a topology tracks.
pub const DEFAULT_TOPOLOGY_CAPACITY: usize = 65_536;

/// A device's role in the topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// Uplink aggregator of a pod.
    Hub,
    /// Member of a pod, connected to its hub.
    Hubby,
    /// Hub of one pod and hubby of another.
    Hybrid,
}

impl NodeRole {
    /// `hub`, `hubby` or `hybrid`.
    pub const fn as_str(self) -> &'static str {
        match self {
            NodeRole::Hub => "hub",
            NodeRole::Hubby => "hubby",
            NodeRole::Hybrid => "hybrid",
        }
    }
}

/// A hub and its hubbies with a shared function, e.g. `kitchen_sensors`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pod {
    /// Identifier.
    pub pod_id: String,
    /// Human name.
    pub name: String,
    /// The hub.
    pub hub_did: String,
    /// Members, in joining order.
    pub hubby_dids: Vec<String>,
    /// What the pod offers.
    pub capabilities: BTreeSet<String>,
    /// The station it belongs to.
    pub station_id: Option<String>,
}

impl Pod {
    /// Every member: the hub first, then the hubbies.
    pub fn all_members(&self) -> impl Iterator<Item = &str> {
        core::iter::once(self.hub_did.as_str()).chain(self.hubby_dids.iter().map(String::as_str))
    }

    /// Hub plus hubbies.
    pub fn member_count(&self) -> usize {
        1 + self.hubby_dids.len()
    }
}

/// Pods sharing an uplink, e.g. `building_A`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Station {
    /// Identifier.
    pub station_id: String,
    /// Human name.
    pub name: String,
    /// Its pods.
    pub pod_ids: Vec<String>,
    /// The uplink device.
    pub uplink_did: Option<String>,
}

/// Why a topology change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// No pod with this id.
    #[error("pod not found: {0}")]
    UnknownPod(String),
    /// The topology tracks its capacity of devices, pods or stations.
    #[error("topology full ({capacity} entries)")]
    Full {
        /// The capacity.
        capacity: usize,
    },
}

/// Counts reported by [`TopologyManager::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TopologyStats {
    /// Pods.
    pub pods: usize,
    /// Stations.
    pub stations: usize,
    /// Devices placed in a pod.
    pub total_devices: usize,
    /// Devices per role (`hub`, `hubby`, `hybrid`).
    pub roles: BTreeMap<&'static str, usize>,
    /// Changes refused because the topology was full.
    pub refused: u64,
}

/// Pods, stations and device roles; bounded.
#[derive(Debug)]
pub struct TopologyManager {
    capacity: usize,
    pods: HashMap<String, Pod>,
    stations: HashMap<String, Station>,
    did_to_pod: HashMap<String, String>,
    roles: HashMap<String, NodeRole>,
    refused: u64,
}

impl Default for TopologyManager {
    fn default() -> Self {
        TopologyManager::new(DEFAULT_TOPOLOGY_CAPACITY)
    }
}

impl TopologyManager {
    /// An empty topology tracking at most `capacity` devices, pods and
    /// stations each.
    pub fn new(capacity: usize) -> Self {
        TopologyManager {
            capacity,
            pods: HashMap::new(),
            stations: HashMap::new(),
            did_to_pod: HashMap::new(),
            roles: HashMap::new(),
            refused: 0,
        }
    }

    fn full(&mut self) -> TopologyError {
        self.refused += 1;
        TopologyError::Full {
            capacity: self.capacity,
        }
    }

    fn room_for_device(&mut self, did: &str) -> Result<(), TopologyError> {
        if self.roles.contains_key(did) || self.roles.len() < self.capacity {
            Ok(())
        } else {
            Err(self.full())
        }
    }

    /// Creates (or replaces) a pod with `hub_did` as hub, and adds it to its
    /// station if that station exists.
    pub fn create_pod(
        &mut self,
        pod_id: &str,
        name: &str,
        hub_did: &str,
        station_id: Option<&str>,
        capabilities: impl IntoIterator<Item = String>,
    ) -> Result<&Pod, TopologyError> {
        self.room_for_device(hub_did)?;
        if !self.pods.contains_key(pod_id) && self.pods.len() >= self.capacity {
            return Err(self.full());
        }
        let pod = Pod {
            pod_id: pod_id.to_owned(),
            name: name.to_owned(),
            hub_did: hub_did.to_owned(),
            hubby_dids: Vec::new(),
            capabilities: capabilities.into_iter().collect(),
            station_id: station_id.map(str::to_owned),
        };
        self.did_to_pod
            .insert(hub_did.to_owned(), pod_id.to_owned());
        self.roles.insert(hub_did.to_owned(), NodeRole::Hub);
        if let Some(station) = station_id.and_then(|s| self.stations.get_mut(s))
            && !station.pod_ids.iter().any(|p| p == pod_id)
        {
            station.pod_ids.push(pod_id.to_owned());
        }
        self.pods.insert(pod_id.to_owned(), pod);
        Ok(&self.pods[pod_id])
    }

    /// Adds `did` to pod `pod_id` as hubby; a device already hub somewhere
    /// becomes hybrid.
    pub fn add_hubby_to_pod(&mut self, pod_id: &str, did: &str) -> Result<(), TopologyError> {
        self.room_for_device(did)?;
        let pod = self
            .pods
            .get_mut(pod_id)
            .ok_or_else(|| TopologyError::UnknownPod(pod_id.to_owned()))?;
        if !pod.hubby_dids.iter().any(|d| d == did) {
            pod.hubby_dids.push(did.to_owned());
        }
        self.did_to_pod.insert(did.to_owned(), pod_id.to_owned());
        let role = match self.roles.get(did) {
            Some(NodeRole::Hub | NodeRole::Hybrid) => NodeRole::Hybrid,
            _ => NodeRole::Hubby,
        };
        self.roles.insert(did.to_owned(), role);
        Ok(())
    }

    /// Removes `did` from pod `pod_id`'s hubbies; returns whether it was one.
    pub fn remove_hubby_from_pod(&mut self, pod_id: &str, did: &str) -> bool {
        let Some(pod) = self.pods.get_mut(pod_id) else {
            return false;
        };
        let before = pod.hubby_dids.len();
        pod.hubby_dids.retain(|d| d != did);
        let removed = pod.hubby_dids.len() != before;
        if removed && self.did_to_pod.get(did).is_some_and(|p| p == pod_id) {
            self.did_to_pod.remove(did);
            match self.roles.get(did) {
                Some(NodeRole::Hybrid) => {
                    // Still the hub of its own pod.
                    self.roles.insert(did.to_owned(), NodeRole::Hub);
                    if let Some(own) = self.pods.values().find(|p| p.hub_did == did) {
                        self.did_to_pod.insert(did.to_owned(), own.pod_id.clone());
                    }
                }
                Some(NodeRole::Hubby) => {
                    self.roles.remove(did);
                }
                _ => {}
            }
        }
        removed
    }

    /// Creates (or replaces) a station.
    pub fn create_station(
        &mut self,
        station_id: &str,
        name: &str,
        uplink_did: Option<&str>,
    ) -> Result<&Station, TopologyError> {
        if !self.stations.contains_key(station_id) && self.stations.len() >= self.capacity {
            return Err(self.full());
        }
        let station = Station {
            station_id: station_id.to_owned(),
            name: name.to_owned(),
            pod_ids: Vec::new(),
            uplink_did: uplink_did.map(str::to_owned),
        };
        self.stations.insert(station_id.to_owned(), station);
        Ok(&self.stations[station_id])
    }

    /// A pod by id.
    pub fn pod(&self, pod_id: &str) -> Option<&Pod> {
        self.pods.get(pod_id)
    }

    /// A station by id.
    pub fn station(&self, station_id: &str) -> Option<&Station> {
        self.stations.get(station_id)
    }

    /// The pod `did` was last placed in.
    pub fn pod_of(&self, did: &str) -> Option<&Pod> {
        self.did_to_pod.get(did).and_then(|p| self.pods.get(p))
    }

    /// The role of `did`.
    pub fn role_of(&self, did: &str) -> Option<NodeRole> {
        self.roles.get(did).copied()
    }

    /// Counts.
    pub fn stats(&self) -> TopologyStats {
        let mut roles = BTreeMap::new();
        for r in self.roles.values() {
            *roles.entry(r.as_str()).or_insert(0) += 1;
        }
        TopologyStats {
            pods: self.pods.len(),
            stations: self.stations.len(),
            total_devices: self.did_to_pod.len(),
            roles,
            refused: self.refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_hubbies_and_hybrid_roles() {
        let mut t = TopologyManager::default();
        t.create_station("building_a", "Building A", Some("jis:uplink"))
            .unwrap();
        let pod = t
            .create_pod(
                "kitchen",
                "Kitchen",
                "jis:hub1",
                Some("building_a"),
                ["temp".to_string()],
            )
            .unwrap();
        assert_eq!(pod.member_count(), 1);
        t.create_pod("hall", "Hall", "jis:hub2", None, []).unwrap();
        t.add_hubby_to_pod("kitchen", "jis:s1").unwrap();
        t.add_hubby_to_pod("kitchen", "jis:s1").unwrap();
        t.add_hubby_to_pod("kitchen", "jis:hub2").unwrap();
        assert_eq!(t.role_of("jis:hub1"), Some(NodeRole::Hub));
        assert_eq!(t.role_of("jis:s1"), Some(NodeRole::Hubby));
        assert_eq!(t.role_of("jis:hub2"), Some(NodeRole::Hybrid));
        let kitchen = t.pod("kitchen").unwrap();
        assert_eq!(
            kitchen.all_members().collect::<Vec<_>>(),
            ["jis:hub1", "jis:s1", "jis:hub2"]
        );
        assert_eq!(t.station("building_a").unwrap().pod_ids, ["kitchen"]);
        assert_eq!(t.pod_of("jis:s1").unwrap().pod_id, "kitchen");
        assert_eq!(
            t.add_hubby_to_pod("nope", "jis:x"),
            Err(TopologyError::UnknownPod("nope".into()))
        );
        let s = t.stats();
        assert_eq!((s.pods, s.stations, s.total_devices), (2, 1, 3));
        assert_eq!(s.roles.get("hybrid"), Some(&1));
        assert!(t.remove_hubby_from_pod("kitchen", "jis:hub2"));
        assert_eq!(t.role_of("jis:hub2"), Some(NodeRole::Hub));
        assert_eq!(t.pod_of("jis:hub2").unwrap().pod_id, "hall");
        assert!(t.remove_hubby_from_pod("kitchen", "jis:s1"));
        assert_eq!(t.role_of("jis:s1"), None);
        assert!(!t.remove_hubby_from_pod("kitchen", "jis:s1"));
    }

    #[test]
    fn bounded() {
        let mut t = TopologyManager::new(2);
        t.create_pod("p", "P", "jis:hub", None, []).unwrap();
        t.add_hubby_to_pod("p", "jis:a").unwrap();
        assert_eq!(
            t.add_hubby_to_pod("p", "jis:b"),
            Err(TopologyError::Full { capacity: 2 })
        );
        // Known devices can still move.
        t.add_hubby_to_pod("p", "jis:a").unwrap();
        assert_eq!(t.stats().total_devices, 2);
        assert_eq!(t.stats().refused, 1);
        t.create_station("s1", "S1", None).unwrap();
        t.create_station("s2", "S2", None).unwrap();
        assert!(t.create_station("s3", "S3", None).is_err());
        assert_eq!(t.stats().refused, 2);
    }
}
