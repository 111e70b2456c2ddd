//! The key-state model of "Flexible and Robust Key Rollover in DNSSEC"
//! (Schaeffer, Overeinder, Mekking), as BIND 9's dnssec-policy and
//! OpenDNSSEC 2 implement it: each key has a goal and, for each kind of
//! record it affects, a state.

use serde::{Deserialize, Serialize};

use crate::zone::dnssec::{Algorithm, Role};

/// Where a key's record stands in resolvers' caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordState {
    /// Not published, and no cache holds it.
    Hidden,
    /// Published; some caches may not have it yet.
    Rumoured,
    /// Published, and every cache that holds the RRset holds it.
    Omnipresent,
    /// Withdrawn; some caches may still hold it.
    Unretentive,
}

impl RecordState {
    /// `hidden`, `rumoured`, `omnipresent`, `unretentive`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Hidden => "hidden",
            RecordState::Rumoured => "rumoured",
            RecordState::Omnipresent => "omnipresent",
            RecordState::Unretentive => "unretentive",
        }
    }
}

/// Where a key is headed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    /// To be published and used.
    Omnipresent,
    /// To be withdrawn and, once hidden everywhere, removed.
    Hidden,
}

impl Goal {
    /// `omnipresent` or `hidden`.
    pub fn as_str(self) -> &'static str {
        match self {
            Goal::Omnipresent => "omnipresent",
            Goal::Hidden => "hidden",
        }
    }
}

/// The records a key affects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Record {
    /// Its DNSKEY in the apex DNSKEY RRset.
    Dnskey,
    /// Its signature over the DNSKEY RRset (KSK, CSK).
    Krrsig,
    /// Its signatures over the zone's other RRsets (ZSK, CSK).
    Zrrsig,
    /// The DS at the parent that names it (KSK, CSK).
    Ds,
}

impl Record {
    /// All four, in the order tables show them.
    pub const ALL: [Record; 4] = [Record::Dnskey, Record::Krrsig, Record::Zrrsig, Record::Ds];

    /// `dnskey`, `krrsig`, `zrrsig`, `ds`.
    pub fn as_str(self) -> &'static str {
        match self {
            Record::Dnskey => "dnskey",
            Record::Krrsig => "krrsig",
            Record::Zrrsig => "zrrsig",
            Record::Ds => "ds",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One record's state and when it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordStatus {
    /// The state.
    pub state: RecordState,
    /// When it entered that state (Unix seconds).
    pub since: i64,
}

/// A key as the state machine sees it. Record states of records a key's
/// role does not affect (a ZSK's DS and KRRSIG, a KSK's ZRRSIG) stay hidden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    /// Stable id (the database's).
    pub id: i64,
    /// KSK, ZSK or CSK.
    #[serde(with = "serde_role")]
    pub role: Role,
    /// Its algorithm.
    #[serde(with = "serde_algorithm")]
    pub algorithm: Algorithm,
    /// The key tag of its DNSKEY.
    pub tag: u16,
    /// Where it is headed.
    pub goal: Goal,
    /// DNSKEY, KRRSIG, ZRRSIG, DS, indexed by [`Record`].
    pub records: [RecordStatus; 4],
    /// When it was made.
    pub created: i64,
    /// When it first signed (ZRRSIG or KRRSIG left hidden), if it has.
    pub active: Option<i64>,
    /// When its lifetime ends and a successor must have replaced it
    /// (`None`: unlimited).
    pub retire: Option<i64>,
    /// The key it replaces.
    pub predecessor: Option<i64>,
    /// The key that replaces it.
    pub successor: Option<i64>,
    /// Declared compromised: replace as fast as the rules allow.
    pub compromised: bool,
    /// The parent has been asked to publish (true) or withdraw (false) its
    /// DS, and has not yet been seen to; `None` when nothing is pending.
    pub ds_pending: Option<bool>,
}

impl Key {
    /// A record's status.
    pub fn record(&self, record: Record) -> RecordStatus {
        self.records[record.index()]
    }

    /// A record's state.
    pub fn state(&self, record: Record) -> RecordState {
        self.records[record.index()].state
    }

    /// Sets a record's state as of `now`.
    pub fn set(&mut self, record: Record, state: RecordState, now: i64) {
        self.records[record.index()] = RecordStatus { state, since: now };
    }

    /// Does its role touch `record` at all?
    pub fn affects(&self, record: Record) -> bool {
        match record {
            Record::Dnskey => true,
            Record::Krrsig | Record::Ds => self.role.signs_keys(),
            Record::Zrrsig => self.role.signs_zone(),
        }
    }

    /// A new key, every record hidden, goal omnipresent.
    pub fn new(id: i64, role: Role, algorithm: Algorithm, tag: u16, now: i64) -> Key {
        let hidden = RecordStatus { state: RecordState::Hidden, since: now };
        Key {
            id,
            role,
            algorithm,
            tag,
            goal: Goal::Omnipresent,
            records: [hidden; 4],
            created: now,
            active: None,
            retire: None,
            predecessor: None,
            successor: None,
            compromised: false,
            ds_pending: None,
        }
    }
}

/// What the operator (or a parent check) reports to the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observation {
    /// The parent publishes the DS of this key.
    DsSeen {
        /// The key's id.
        key: i64,
    },
    /// The parent no longer publishes the DS of this key.
    DsGone {
        /// The key's id.
        key: i64,
    },
    /// Start a rollover of the keys of this role now (manual).
    Rollover {
        /// The role to roll.
        #[serde(with = "serde_role")]
        role: Role,
    },
    /// This key is compromised: replace it as fast as the rules allow.
    Compromised {
        /// The key's id.
        key: i64,
    },
}

/// What the caller must do for the machine; the machine does no I/O.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Make a key in the store and add it (all hidden, goal omnipresent,
    /// `predecessor` set) before the next step.
    CreateKey {
        /// Its role.
        #[serde(with = "serde_role")]
        role: Role,
        /// Its algorithm.
        #[serde(with = "serde_algorithm")]
        algorithm: Algorithm,
        /// The key it will replace.
        predecessor: Option<i64>,
    },
    /// Ask the parent to publish the DS of this key (CDS/CDNSKEY are
    /// published meanwhile); confirm with a `DsSeen` observation.
    SubmitDs {
        /// The key's id.
        key: i64,
    },
    /// Ask the parent to withdraw the DS of this key; confirm with
    /// `DsGone`.
    RetractDs {
        /// The key's id.
        key: i64,
    },
    /// The key is hidden everywhere and done with: it may be deleted
    /// from its store.
    RemoveKey {
        /// The key's id.
        key: i64,
    },
}

/// One record of one key changing state, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The key's id.
    pub key: i64,
    /// The record.
    pub record: Record,
    /// The state before.
    pub from: RecordState,
    /// The state after.
    pub to: RecordState,
    /// Why, in words (e.g. "DNSKEY TTL + propagation delay passed").
    pub why: String,
}

/// A record that would move but may not yet, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    /// The key's id.
    pub key: i64,
    /// The record.
    pub record: Record,
    /// What it waits for, e.g. "the parent to publish the DS" or
    /// "until 2026-12-01T10:00:00Z (DS TTL + parent propagation)".
    pub reason: String,
    /// When the wait ends by time alone, if it does.
    pub until: Option<i64>,
}

/// The outcome of one step of the machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Step {
    /// The keys after the step.
    pub keys: Vec<Key>,
    /// Every state change taken, in order.
    pub transitions: Vec<Transition>,
    /// What the caller must do.
    pub actions: Vec<Action>,
    /// What is waiting, and why.
    pub waits: Vec<Wait>,
    /// When to run the machine again at the latest (`None`: only on an
    /// observation).
    pub next: Option<i64>,
}

/// Roles as `ksk`, `zsk`, `csk` (the keys module does not derive serde).
mod serde_role {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::zone::dnssec::Role;

    pub(super) fn serialize<S: Serializer>(role: &Role, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(role.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
        let text = String::deserialize(d)?;
        Role::from_text(&text).map_err(D::Error::custom)
    }
}

/// Algorithms as their IANA number.
mod serde_algorithm {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::zone::dnssec::Algorithm;

    pub(super) fn serialize<S: Serializer>(algorithm: &Algorithm, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(algorithm.number())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Algorithm, D::Error> {
        let number = u8::deserialize(d)?;
        Algorithm::from_number(number).ok_or_else(|| D::Error::custom(format!("unsupported algorithm {number}")))
    }
}
