//! The replica arithmetic of a rollout, as pure functions (Kubernetes'
//! `deployment/util` rules).
//!
//! A worked example: `replicas: 10`, `maxSurge: 25%`, `maxUnavailable: 25%`. The surge rounds
//! up (25% of 10 = 2.5 → 3) and unavailability rounds down (2.5 → 2), so at any moment there
//! may be at most 13 pods and at least 8 available ones. The rollout starts by scaling the new
//! ReplicaSet to 3 (13 - 10 old). Once the old ones are all available it may remove
//! 13 - 8 - 3 (new pods not yet available) = 2 old pods, leaving 8 old + 3 new. As new pods
//! become available it scales the new ReplicaSet up to the surge limit again, and the old one
//! down to the availability limit, until the new one has 10 and the old one 0.

use serde_json::Value;

/// `maxSurge`/`maxUnavailable` resolved against `replicas`: (surge, unavailable).
///
/// Percentages: the surge rounds up, unavailability rounds down. If both come to 0,
/// unavailability is 1 so that a rollout can make progress (Kubernetes does the same).
pub fn fenceposts(max_surge: &Value, max_unavailable: &Value, replicas: i64) -> (i64, i64) {
    let surge = int_or_percent(max_surge, replicas, true)
        .unwrap_or(0)
        .max(0);
    let unavailable = int_or_percent(max_unavailable, replicas, false)
        .unwrap_or(0)
        .max(0);
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable.min(replicas.max(0)))
}

/// An IntOrString: an integer, or `"N%"` of `total` rounded up or down.
pub fn int_or_percent(value: &Value, total: i64, round_up: bool) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let text = value.as_str()?;
    let Some(percent) = text.strip_suffix('%') else {
        return text.parse().ok();
    };
    let percent: i64 = percent.parse().ok()?;
    let scaled = percent * total;
    Some(if round_up {
        (scaled + 99).div_euclid(100)
    } else {
        scaled.div_euclid(100)
    })
}

/// The size the new ReplicaSet may have now during a rolling update: as many as the surge
/// allows above `replicas` in total, never more than `replicas`.
pub fn new_rs_replicas(replicas: i64, surge: i64, total_now: i64, new_now: i64) -> i64 {
    let max_total = replicas + surge;
    if total_now >= max_total {
        return new_now;
    }
    let scale_up = max_total - total_now;
    new_now + scale_up.min((replicas - new_now).max(0))
}

/// How many old pods may be removed now without going below `replicas - unavailable`
/// available pods, counting new pods that are not yet available as unavailable.
pub fn max_scale_down(
    replicas: i64,
    unavailable: i64,
    total_now: i64,
    new_replicas: i64,
    new_available: i64,
) -> i64 {
    let min_available = replicas - unavailable;
    let new_unavailable = (new_replicas - new_available).max(0);
    total_now - min_available - new_unavailable
}

/// Splits `total` across ReplicaSets in proportion to their current sizes (used when a
/// Deployment is scaled in the middle of a rollout). The rounding remainder goes to the
/// first entry, which the caller makes the newest ReplicaSet.
pub fn proportional(current: &[i64], total: i64) -> Vec<i64> {
    let sum: i64 = current.iter().sum();
    if current.is_empty() {
        return Vec::new();
    }
    if sum <= 0 {
        let mut out = vec![0; current.len()];
        out[0] = total;
        return out;
    }
    let mut out: Vec<i64> = current.iter().map(|c| c * total / sum).collect();
    let assigned: i64 = out.iter().sum();
    out[0] += total - assigned;
    out
}

/// FNV-1a, 32 bits: the stable, non-cryptographic hash behind generated names.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Kubernetes' name alphabet for generated suffixes (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The `pod-template-hash` of a template: FNV-1a of its JSON and the collision count, its
/// decimal digits mapped onto the safe alphabet as Kubernetes does.
pub fn template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut text = serde_json::to_string(template).unwrap_or_default();
    if let Some(n) = collision_count {
        text.push_str(&n.to_string());
    }
    fnv32a(text.as_bytes())
        .to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fenceposts_round_like_kubernetes() {
        // (surge, unavailable, replicas) -> expected
        let cases = [
            (json!("25%"), json!("25%"), 10, (3, 2)),
            (json!("25%"), json!("25%"), 4, (1, 1)),
            (json!("25%"), json!("25%"), 1, (1, 0)),
            (json!(1), json!(0), 3, (1, 0)),
            (json!(0), json!(0), 3, (0, 1)),
            (json!("0%"), json!("0%"), 3, (0, 1)),
            (json!("50%"), json!("10%"), 5, (3, 0)),
            (json!(2), json!(5), 3, (2, 3)),
        ];
        for (surge, unavailable, replicas, want) in cases {
            assert_eq!(
                fenceposts(&surge, &unavailable, replicas),
                want,
                "{surge} {unavailable} {replicas}"
            );
        }
    }

    #[test]
    fn the_worked_example_steps_through() {
        // replicas 10, surge 3, unavailable 2; old RS has 10 available.
        assert_eq!(new_rs_replicas(10, 3, 10, 0), 3);
        // 13 pods, 3 new not yet available: 13 - 8 - 3 = 2 old may go.
        assert_eq!(max_scale_down(10, 2, 13, 3, 0), 2);
        // Old at 8, new at 3 (available): 11 pods, the new RS may grow by 2.
        assert_eq!(new_rs_replicas(10, 3, 11, 3), 5);
        // Never past replicas.
        assert_eq!(new_rs_replicas(10, 3, 9, 9), 10);
        // maxSurge 1, maxUnavailable 0 (the nginx-deploy seed): one new pod at a time.
        assert_eq!(new_rs_replicas(3, 1, 3, 0), 1);
        assert_eq!(max_scale_down(3, 0, 4, 1, 0), 0);
        assert_eq!(max_scale_down(3, 0, 4, 1, 1), 1);
    }

    #[test]
    fn proportional_scaling_keeps_shares_and_gives_the_rest_to_the_newest() {
        assert_eq!(proportional(&[3, 7], 20), vec![6, 14]);
        assert_eq!(proportional(&[1, 2], 4), vec![2, 2]);
        assert_eq!(proportional(&[0, 0], 5), vec![5, 0]);
        assert_eq!(proportional(&[5, 5], 0), vec![0, 0]);
    }

    #[test]
    fn template_hashes_are_stable_short_and_change_with_the_template() {
        let a = json!({"spec": {"containers": [{"image": "hello:v1"}]}});
        let b = json!({"spec": {"containers": [{"image": "hello:v2"}]}});
        let h = template_hash(&a, None);
        assert_eq!(h, template_hash(&a, None));
        assert_ne!(h, template_hash(&b, None));
        assert_ne!(h, template_hash(&a, Some(1)));
        assert!(!h.is_empty() && h.len() <= 10);
        assert!(h.bytes().all(|c| ALPHABET.contains(&c)));
    }
}
