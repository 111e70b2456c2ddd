//! The review hook (issue 28): each zone's command that a verified
//! candidate is offered to before it is published, and every offer with
//! its verdict. A verdict binds to the candidate's content (its
//! fingerprint), not to its signatures: a later run that signs the same
//! content again finds it (ARCHITECTURE.md §7).

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::events::{Actor, Event, EventKind, insert_event};
use super::leases::check_fence;
use super::{Database, DbError, Fence, Result};

/// A zone's review hook.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReviewHook {
    /// The program, then its arguments (no shell).
    pub command: Vec<String>,
    /// How long it may run (seconds) before it is killed and the
    /// candidate counts as rejected.
    pub timeout: i64,
    /// When it was set (Unix seconds).
    pub set_at: i64,
}

/// What became of a candidate offered for review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The hook said "wait" (exit 75): an operator decides.
    Pending,
    /// Approved (exit 0, or an operator): it may be published.
    Approved,
    /// Rejected (another exit status, or an operator).
    Rejected,
    /// The hook ran past its timeout and was killed: not published.
    TimedOut,
    /// The hook ended by a signal, or did not start: not published.
    Crashed,
    /// A later candidate with other content took its place while it
    /// waited (or the hook was removed).
    Superseded,
}

impl Verdict {
    const ALL: [Verdict; 6] = [
        Verdict::Pending,
        Verdict::Approved,
        Verdict::Rejected,
        Verdict::TimedOut,
        Verdict::Crashed,
        Verdict::Superseded,
    ];

    /// Whether an operator may turn a review with this verdict into
    /// `to`: one that waits either way; a no (the hook's or an
    /// operator's: rejected, timed out, crashed) into an approval; and a
    /// hook that gave no verdict (timed out, crashed) into a rejection,
    /// so the content is not offered again. An approval stands: its
    /// version may be published already.
    pub fn operator_may_make(self, to: Verdict) -> bool {
        matches!(
            (self, to),
            (Verdict::Pending, Verdict::Approved | Verdict::Rejected)
                | (Verdict::Rejected | Verdict::TimedOut | Verdict::Crashed, Verdict::Approved)
                | (Verdict::TimedOut | Verdict::Crashed, Verdict::Rejected)
        )
    }

    /// The name stored (and shown).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pending => "pending",
            Verdict::Approved => "approved",
            Verdict::Rejected => "rejected",
            Verdict::TimedOut => "timed-out",
            Verdict::Crashed => "crashed",
            Verdict::Superseded => "superseded",
        }
    }

    fn from_stored(name: &str) -> Result<Verdict> {
        Verdict::ALL
            .into_iter()
            .find(|v| v.as_str() == name)
            .ok_or_else(|| DbError::Corrupt { what: "review verdict", value: name.to_owned() })
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who gave a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decider {
    /// The review hook (its exit status, its timeout, its crash).
    Hook,
    /// An operator (`signet zone approve|reject`).
    Operator,
    /// signet itself (a review superseded).
    Signet,
}

impl Decider {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Decider::Hook => "hook",
            Decider::Operator => "operator",
            Decider::Signet => "signet",
        }
    }

    fn from_stored(name: &str) -> Result<Decider> {
        [Decider::Hook, Decider::Operator, Decider::Signet]
            .into_iter()
            .find(|d| d.as_str() == name)
            .ok_or_else(|| DbError::Corrupt { what: "review decider", value: name.to_owned() })
    }
}

/// A candidate offered for review, and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Review {
    /// Row id.
    pub id: i64,
    /// The candidate's SOA serial.
    pub serial: u32,
    /// The SHA-256 of its content (every record but RRSIG and ZONEMD,
    /// the SOA serial left out).
    #[serde(serialize_with = "hex")]
    pub fingerprint: Vec<u8>,
    /// Where it stands.
    pub verdict: Verdict,
    /// Why, in words: the hook's (its standard error), the operator's.
    pub reason: Option<String>,
    /// Who decided (None while pending).
    pub decided_by: Option<Decider>,
    /// The candidate's records (RRSIGs included).
    pub records: u64,
    /// Its RRSIGs.
    pub rrsigs: u64,
    /// When it was offered (Unix seconds).
    pub offered_at: i64,
    /// When it was decided.
    pub decided_at: Option<i64>,
}

fn hex<S: serde::Serializer>(bytes: &[u8], serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(&data_encoding::HEXLOWER.encode(bytes))
}

/// A review to record: a candidate's offer with the hook's verdict.
#[derive(Debug, Clone)]
pub struct NewReview<'a> {
    /// The candidate's serial.
    pub serial: u32,
    /// Its content's fingerprint.
    pub fingerprint: &'a [u8],
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub reason: Option<&'a str>,
    /// Records and RRSIGs of the candidate.
    pub records: u64,
    /// RRSIGs of the candidate.
    pub rrsigs: u64,
    /// When (the run's `now`).
    pub at: i64,
}

/// A review's columns, then `$tail` (a literal, so that the query stays
/// a static string).
macro_rules! review_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, serial, fingerprint, verdict, reason, decided_by, records, rrsigs, offered_at, decided_at ",
            "FROM reviews WHERE zone_id = $1 ",
            $tail
        )
    };
}

fn review_from_row(row: &AnyRow) -> Result<Review> {
    let serial: i64 = row.try_get("serial")?;
    let count = |column: &str| -> Result<u64> { Ok(u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or(0)) };
    let verdict: String = row.try_get("verdict")?;
    let decided_by: Option<String> = row.try_get("decided_by")?;
    Ok(Review {
        id: row.try_get("id")?,
        serial: u32::try_from(serial)
            .map_err(|_| DbError::Corrupt { what: "review serial", value: serial.to_string() })?,
        fingerprint: row.try_get("fingerprint")?,
        verdict: Verdict::from_stored(&verdict)?,
        reason: row.try_get("reason")?,
        decided_by: decided_by.as_deref().map(Decider::from_stored).transpose()?,
        records: count("records")?,
        rrsigs: count("rrsigs")?,
        offered_at: row.try_get("offered_at")?,
        decided_at: row.try_get("decided_at")?,
    })
}

impl Database {
    /// The zone's review hook, if it has one.
    pub async fn review_hook(&self, zone_id: i64) -> Result<Option<ReviewHook>> {
        let row: Option<(String, i64, i64)> =
            sqlx::query_as("SELECT command, timeout, set_at FROM review_hooks WHERE zone_id = $1")
                .bind(zone_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some((command, timeout, set_at)) = row else { return Ok(None) };
        let command: Vec<String> = serde_json::from_str(&command)
            .map_err(|_| DbError::Corrupt { what: "review hook command", value: command.clone() })?;
        Ok(Some(ReviewHook { command, timeout, set_at }))
    }

    /// Sets the zone's review hook (`command`, `timeout` seconds), or
    /// removes it (None: a review waiting for an operator is superseded),
    /// with an audit row.
    pub async fn set_review_hook(&self, zone_id: i64, hook: Option<(&[String], i64)>, now: i64) -> Result<()> {
        let mut tx = self.write().await?;
        let why = match hook {
            Some((command, timeout)) => {
                let text = serde_json::to_string(command)
                    .map_err(|e| DbError::Corrupt { what: "review hook command", value: e.to_string() })?;
                sqlx::query(
                    "INSERT INTO review_hooks (zone_id, command, timeout, set_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (zone_id) DO UPDATE SET command = $2, timeout = $3, set_at = $4",
                )
                .bind(zone_id)
                .bind(&text)
                .bind(timeout)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                format!("review hook set: {} (timeout {timeout} s)", command.join(" "))
            }
            None => {
                sqlx::query("DELETE FROM review_hooks WHERE zone_id = $1").bind(zone_id).execute(&mut *tx).await?;
                sqlx::query(
                    "UPDATE reviews SET verdict = 'superseded', decided_by = 'signet', decided_at = $2,
                         reason = 'the review hook was removed'
                     WHERE zone_id = $1 AND verdict = 'pending'",
                )
                .bind(zone_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                "review hook removed: versions are published without review".to_owned()
            }
        };
        insert_event(&mut tx, Some(zone_id), &Event::note(now, Actor::Operator, EventKind::PolicyChange, None, why))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The zone's newest review, if any.
    pub async fn latest_review(&self, zone_id: i64) -> Result<Option<Review>> {
        Ok(self.reviews(zone_id, 1).await?.pop())
    }

    /// The zone's newest `limit` reviews, newest first.
    pub async fn reviews(&self, zone_id: i64, limit: i64) -> Result<Vec<Review>> {
        let rows = sqlx::query(review_select!("ORDER BY id DESC LIMIT $2"))
            .bind(zone_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(review_from_row).collect()
    }

    /// Records a candidate's review (the hook's verdict) and its audit
    /// row `why`; a pending review `supersedes` names (another content)
    /// is marked superseded in the same transaction. Fenced like every
    /// write of a run.
    pub async fn record_review(
        &self,
        zone_id: i64,
        review: &NewReview<'_>,
        supersedes: Option<i64>,
        why: &str,
        fence: Option<&Fence>,
    ) -> Result<i64> {
        let mut tx = self.write().await?;
        check_fence(self, &mut tx, zone_id, fence).await?;
        if let Some(old) = supersedes {
            sqlx::query(
                "UPDATE reviews SET verdict = 'superseded', decided_by = 'signet', decided_at = $3,
                     reason = 'a candidate with other content took its place'
                 WHERE zone_id = $1 AND id = $2 AND verdict = 'pending'",
            )
            .bind(zone_id)
            .bind(old)
            .bind(review.at)
            .execute(&mut *tx)
            .await?;
        }
        let decided = (review.verdict != Verdict::Pending).then_some(review.at);
        let id: i64 = sqlx::query(
            "INSERT INTO reviews (zone_id, serial, fingerprint, verdict, reason, decided_by, records, rrsigs,
                                  offered_at, decided_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(zone_id)
        .bind(i64::from(review.serial))
        .bind(review.fingerprint)
        .bind(review.verdict.as_str())
        .bind(review.reason)
        .bind(decided.map(|_| Decider::Hook.as_str()))
        .bind(i64::try_from(review.records).unwrap_or(i64::MAX))
        .bind(i64::try_from(review.rrsigs).unwrap_or(i64::MAX))
        .bind(review.at)
        .bind(decided)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        insert_event(&mut tx, Some(zone_id), &Event::note(review.at, Actor::Machine, EventKind::Run, None, why))
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// An operator's decision on the zone's newest review, which must be
    /// of `serial` (`signet zone approve|reject`), with an audit row.
    /// A review that waits is decided in place; a verdict an operator
    /// overrules ([`Verdict::operator_may_make`]) stays in the history,
    /// and the decision is a review of its own for the same content.
    /// Refused ([`DbError::NotDecidable`]) otherwise.
    pub async fn decide_review(
        &self,
        zone_id: i64,
        zone: &str,
        serial: u32,
        verdict: Verdict,
        reason: Option<&str>,
        now: i64,
    ) -> Result<Review> {
        let mut tx = self.write().await?;
        let newest =
            sqlx::query(review_select!("ORDER BY id DESC LIMIT 1")).bind(zone_id).fetch_optional(&mut *tx).await?;
        let newest = newest.as_ref().map(review_from_row).transpose()?;
        let Some(mut review) = newest.clone().filter(|r| r.serial == serial && r.verdict.operator_may_make(verdict))
        else {
            let newest = newest.map(|r| (r.serial, r.verdict));
            return Err(DbError::NotDecidable { zone: zone.to_owned(), serial, verdict, newest });
        };
        let overruled = (review.verdict != Verdict::Pending).then_some(review.verdict);
        match overruled {
            None => {
                sqlx::query(
                    "UPDATE reviews SET verdict = $2, decided_by = 'operator', decided_at = $3,
                         reason = COALESCE($4, reason)
                     WHERE id = $1",
                )
                .bind(review.id)
                .bind(verdict.as_str())
                .bind(now)
                .bind(reason)
                .execute(&mut *tx)
                .await?;
            }
            Some(_) => {
                review.id = sqlx::query(
                    "INSERT INTO reviews (zone_id, serial, fingerprint, verdict, reason, decided_by, records, rrsigs,
                                          offered_at, decided_at)
                     SELECT zone_id, serial, fingerprint, $2, $3, 'operator', records, rrsigs, offered_at, $4
                     FROM reviews WHERE id = $1 RETURNING id",
                )
                .bind(review.id)
                .bind(verdict.as_str())
                .bind(reason)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
                review.reason = None;
            }
        }
        let by_whom = match (overruled, review.decided_by) {
            (None, _) => String::new(),
            (Some(was), Some(Decider::Hook)) => format!(" over the hook's verdict ({was})"),
            (Some(was), _) => format!(" (it was {was})"),
        };
        let why = match reason {
            Some(reason) => format!("review: serial {serial} {verdict} by the operator{by_whom}: {reason}"),
            None => format!("review: serial {serial} {verdict} by the operator{by_whom}"),
        };
        insert_event(&mut tx, Some(zone_id), &Event::note(now, Actor::Operator, EventKind::Run, None, why)).await?;
        tx.commit().await?;
        review.verdict = verdict;
        review.decided_by = Some(Decider::Operator);
        review.decided_at = Some(now);
        review.reason = reason.map(str::to_owned).or(review.reason);
        Ok(review)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::scratch::database;

    async fn offered(db: &Database, zone: i64, serial: u32, verdict: Verdict) -> i64 {
        let review = NewReview {
            serial,
            fingerprint: &[serial as u8; 32],
            verdict,
            reason: None,
            records: 9,
            rrsigs: 4,
            at: 10,
        };
        db.record_review(zone, &review, None, "offered", None).await.expect("record")
    }

    #[tokio::test]
    async fn an_operator_decides_the_newest_review_and_may_overrule_a_no() {
        let (db, name, zone, _dir) = database().await;
        let name = name.to_string();
        let refused = db.decide_review(zone, &name, 1, Verdict::Approved, None, 20).await.expect_err("no review");
        assert!(matches!(refused, DbError::NotDecidable { newest: None, .. }), "{refused}");

        let rejected = offered(&db, zone, 1, Verdict::Rejected).await;
        let approved = db.decide_review(zone, &name, 1, Verdict::Approved, Some("known"), 20).await.expect("overrule");
        assert!(approved.id > rejected, "an overruling is a review of its own");
        assert_eq!(
            (approved.decided_by, approved.decided_at, approved.reason.as_deref()),
            (Some(Decider::Operator), Some(20), Some("known"))
        );
        let history = db.reviews(zone, 10).await.expect("reviews");
        let verdicts: Vec<_> = history.iter().map(|r| (r.serial, r.verdict, r.fingerprint.clone())).collect();
        assert_eq!(verdicts, [(1, Verdict::Approved, vec![1; 32]), (1, Verdict::Rejected, vec![1; 32])]);
        let refused =
            db.decide_review(zone, &name, 1, Verdict::Rejected, None, 30).await.expect_err("an approval stands");
        assert!(refused.to_string().contains("its review is approved"), "{refused}");

        let waiting = offered(&db, zone, 2, Verdict::Pending).await;
        let refused = db.decide_review(zone, &name, 1, Verdict::Approved, None, 30).await.expect_err("not the newest");
        assert!(refused.to_string().contains("the review that waits is of serial 2"), "{refused}");
        let decided = db.decide_review(zone, &name, 2, Verdict::Rejected, None, 30).await.expect("decided in place");
        assert_eq!((decided.id, decided.verdict), (waiting, Verdict::Rejected));

        offered(&db, zone, 3, Verdict::TimedOut).await;
        let rejected =
            db.decide_review(zone, &name, 3, Verdict::Rejected, None, 40).await.expect("no verdict made one");
        assert_eq!(db.latest_review(zone).await.expect("latest"), Some(rejected));
    }

    #[test]
    fn what_an_operator_may_make_of_a_verdict() {
        use Verdict::*;
        for from in Verdict::ALL {
            let allowed: Vec<_> = [Approved, Rejected].into_iter().filter(|to| from.operator_may_make(*to)).collect();
            let expected = match from {
                Pending => vec![Approved, Rejected],
                Rejected => vec![Approved],
                TimedOut | Crashed => vec![Approved, Rejected],
                Approved | Superseded => vec![],
            };
            assert_eq!(allowed, expected, "{from}");
        }
    }
}
