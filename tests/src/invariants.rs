//! What must hold of the table and the card bucket whatever failed on the way (a lost answer, a
//! throttle, a reset, a race): every counter equals the items it counts, nothing is recorded
//! twice, nothing points at nothing: every binding has its one membership in its relative's
//! partition and every membership its binding, every open dispute its queue entry and guard, no
//! age transition without its binding. Read over everything a test wrote, after it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

type Item = HashMap<String, AttributeValue>;

fn text(item: &Item, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        Some(AttributeValue::N(n)) => n.clone(),
        _ => String::new(),
    }
}

fn number(item: &Item, name: &str) -> u64 {
    text(item, name).parse().unwrap_or(0)
}

/// Counters and what they count, by the counter's partition: (the counter, the items).
type Tally = BTreeMap<String, (u64, u64)>;

fn counter(tally: &mut Tally, at: String, value: u64) {
    tally.entry(at).or_default().0 = value;
}

fn counted(tally: &mut Tally, at: String) {
    tally.entry(at).or_default().1 += 1;
}

/// Every way `items` (a whole table) and `objects` (the card bucket's keys) break the rules;
/// empty when they hold.
pub fn violations(items: &[Item], objects: &[String]) -> Vec<String> {
    let key = |i: &Item| (text(i, "pk"), text(i, "sk"));
    let mut found = Vec::new();
    // Counters against what they count: a guardian's bindings, a relative's guardians (one
    // guard item per pair), a tube's people, the cards of a day against the cards recorded.
    let mut tally = Tally::new();
    let (mut cards_recorded, mut cards_counted) = (0, 0);
    let mut bindings = BTreeSet::new();
    let mut revoked = BTreeSet::new();
    let mut marked_images = BTreeSet::new();
    let mut card_images = BTreeSet::new();
    let mut cards = Vec::new();
    let mut transitions = Vec::new();
    let mut audits: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut memberships = BTreeSet::new();
    // Open disputes (by id) as the reporter's record, the queue and the guards see them.
    let (mut open, mut queued, mut guarded) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for item in items {
        let (pk, sk) = key(item);
        let after = |prefix: &str| sk.strip_prefix(prefix).map(str::to_owned);
        match (pk.split_once('#'), sk.as_str()) {
            (Some(("G", _)), "COUNT") => counter(&mut tally, pk.clone(), number(item, "bound")),
            (Some(("R", _)), "COUNT") => counter(&mut tally, pk.clone(), number(item, "guardians")),
            (Some(("T", _)), "TUBE") => counter(&mut tally, pk.clone(), number(item, "filled")),
            _ => {}
        }
        if pk.starts_with("G#") && sk.starts_with("B#") {
            counted(&mut tally, pk.clone());
            bindings.insert(text(item, "binding_id"));
        }
        if pk.starts_with("G#") && sk.starts_with("AGE#") {
            transitions.push((text(item, "binding_id"), sk.clone()));
        }
        if let (true, Some(relative)) = (pk.starts_with("G#"), after("L#")) {
            counted(&mut tally, format!("R#{relative}"));
        }
        if pk.starts_with("T#") && sk.starts_with("M#") {
            counted(&mut tally, pk.clone());
        }
        if pk.starts_with("R#") && sk.starts_with("M#") {
            memberships.insert(text(item, "binding_id"));
        }
        if pk.starts_with("G#") && sk.starts_with("D#") && text(item, "status") == "open" {
            open.insert(text(item, "dispute_id"));
        }
        if pk == "DISPUTES" {
            queued.insert(text(item, "dispute_id"));
        }
        if pk.starts_with("G#") && sk.starts_with("DG#") {
            guarded.insert(text(item, "dispute_id"));
        }
        if pk.starts_with("R#") && sk.starts_with("OQ#") {
            cards_counted += number(item, "generated");
        }
        if pk.starts_with("K#") && sk.starts_with("O#") {
            cards_recorded += 1;
            card_images.insert(text(item, "object_key"));
            cards.push((text(item, "binding_id"), text(item, "serial")));
        }
        if let (true, Some(object)) = (pk.starts_with("K#") || pk.starts_with("HS#"), after("OP#"))
        {
            marked_images.insert(object);
        }
        // A household sheet's PDF and preview.
        if pk.starts_with("HS#") && sk == "SHEET" {
            card_images.insert(text(item, "pdf_key"));
            card_images.insert(text(item, "preview_key"));
        }
        if pk == "REVOKED" {
            revoked.insert(sk.clone());
        }
        // An audit record names its request last and its action before that: one request
        // records each action once, however often its write was retried.
        if let Some(record) = after("A#") {
            let mut parts = record.rsplitn(3, '#');
            let (request, action) = (parts.next(), parts.next());
            if let (Some(request), Some(action)) = (request, action) {
                let binding = if pk.starts_with("G#") {
                    record.split('#').next().unwrap_or_default()
                } else {
                    ""
                };
                *audits
                    .entry((format!("{pk} {binding}"), format!("{action} {request}")))
                    .or_default() += 1;
            }
        }
    }
    for (at, (counter, items)) in tally {
        if counter != items {
            found.push(format!(
                "{at}: the counter says {counter}, the items are {items}"
            ));
        }
    }
    if cards_counted != cards_recorded {
        found.push(format!(
            "daily card quotas count {cards_counted} cards, {cards_recorded} are recorded"
        ));
    }
    for ((whose, what), times) in audits {
        if times > 1 {
            found.push(format!("{whose}: audit {what} recorded {times} times"));
        }
    }
    for binding in bindings.symmetric_difference(&memberships) {
        found.push(match bindings.contains(binding) {
            true => format!("binding {binding} has no membership"),
            false => format!("membership of binding {binding}, which is not there"),
        });
    }
    for (what, ids) in [("queue entry", &queued), ("guard", &guarded)] {
        for id in open.symmetric_difference(ids) {
            found.push(format!("dispute {id}: open and its {what} disagree"));
        }
    }
    for (binding, serial) in cards {
        if !bindings.contains(&binding) && !revoked.contains(&serial) {
            found.push(format!(
                "card {serial} of unbound binding {binding} is not revoked"
            ));
        }
    }
    // An age transition goes with its binding, in the same transaction.
    for (binding, transition) in transitions {
        if !bindings.contains(&binding) {
            found.push(format!(
                "age transition {transition} outlived its binding {binding}"
            ));
        }
    }
    // Cards, sheets and objects: a card's image and a sheet's files are there; an object is a
    // card's or a sheet's, or marked in flight (the cleanup removes it when its mark is due).
    let stored: BTreeSet<String> = objects.iter().cloned().collect();
    for missing in card_images.difference(&stored) {
        found.push(format!("object {missing} is recorded but not stored"));
    }
    for orphan in stored.difference(&card_images) {
        if !marked_images.contains(orphan) {
            found.push(format!(
                "image {orphan} is stored with no card and no in-flight mark"
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs
            .iter()
            .map(|(name, value)| {
                let value = match value.parse::<u64>() {
                    Ok(_) => AttributeValue::N((*value).to_owned()),
                    Err(_) => AttributeValue::S((*value).to_owned()),
                };
                ((*name).to_owned(), value)
            })
            .collect()
    }

    fn one_binding_with_a_card() -> Vec<Item> {
        vec![
            item(&[("pk", "G#g"), ("sk", "COUNT"), ("bound", "1")]),
            item(&[("pk", "G#g"), ("sk", "B#b"), ("binding_id", "b")]),
            item(&[("pk", "G#g"), ("sk", "AGE#b#end"), ("binding_id", "b")]),
            item(&[("pk", "G#g"), ("sk", "L#r")]),
            item(&[("pk", "R#r"), ("sk", "M#b"), ("binding_id", "b")]),
            item(&[("pk", "R#r"), ("sk", "COUNT"), ("guardians", "1")]),
            item(&[("pk", "G#g"), ("sk", "A#b#2026-12-07T10:00:00Z#bind#req-1")]),
            item(&[("pk", "R#r"), ("sk", "OQ#2026-12-07"), ("generated", "1")]),
            item(&[
                ("pk", "K#b"),
                ("sk", "O#2026-12-07T10:00:00Z#s1"),
                ("binding_id", "b"),
                ("serial", "s1"),
                ("object_key", "cards/b/s1.png"),
            ]),
        ]
    }

    #[test]
    fn a_consistent_table_has_no_violations() {
        let objects = ["cards/b/s1.png".to_owned()];
        assert_eq!(
            violations(&one_binding_with_a_card(), &objects),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_broken_rule_is_named() {
        let mut items = one_binding_with_a_card();
        items[0] = item(&[("pk", "G#g"), ("sk", "COUNT"), ("bound", "2")]);
        items.push(item(&[
            ("pk", "G#g"),
            ("sk", "A#b#2026-12-07T10:00:01Z#bind#req-1"),
        ]));
        let objects = ["cards/b/orphan.png".to_owned()];
        let found = violations(&items, &objects);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[0].starts_with("G#g: the counter says 2, the items are 1"));
        assert!(found[1].contains("audit bind req-1 recorded 2 times"));
        assert!(found[2].contains("recorded but not stored"));
        assert!(found[3].contains("no card and no in-flight mark"));
    }

    #[test]
    fn a_household_sheets_files_are_its_own_and_may_be_in_flight() {
        let mut items = one_binding_with_a_card();
        items.push(item(&[
            ("pk", "HS#s"),
            ("sk", "SHEET"),
            ("pdf_key", "household/h.pdf"),
            ("preview_key", "household/h.png"),
        ]));
        items.push(item(&[("pk", "HS#t"), ("sk", "OP#household/t.pdf")]));
        let mut objects = vec![
            "cards/b/s1.png".to_owned(),
            "household/h.pdf".to_owned(),
            "household/h.png".to_owned(),
            "household/t.pdf".to_owned(),
        ];
        assert_eq!(violations(&items, &objects), Vec::<String>::new());
        objects.retain(|o| o != "household/h.png");
        assert_eq!(
            violations(&items, &objects),
            ["object household/h.png is recorded but not stored"]
        );
    }

    #[test]
    fn a_binding_and_its_membership_and_an_open_dispute_and_its_queue_entry_go_together() {
        let objects = ["cards/b/s1.png".to_owned()];
        let mut items = one_binding_with_a_card();
        items.retain(|i| text(i, "sk") != "M#b");
        items.push(item(&[
            ("pk", "R#r"),
            ("sk", "M#gone"),
            ("binding_id", "gone"),
        ]));
        assert_eq!(
            violations(&items, &objects),
            [
                "binding b has no membership",
                "membership of binding gone, which is not there"
            ]
        );
        let mut items = one_binding_with_a_card();
        let dispute = |pk: &str, sk: &str, status: &str| {
            item(&[
                ("pk", pk),
                ("sk", sk),
                ("dispute_id", "d1"),
                ("status", status),
            ])
        };
        items.push(dispute("G#g", "D#d1", "open"));
        items.push(dispute("DISPUTES", "D#d1", "open"));
        items.push(dispute("G#g", "DG#b2", ""));
        assert_eq!(violations(&items, &objects), Vec::<String>::new());
        items.pop();
        assert_eq!(
            violations(&items, &objects),
            ["dispute d1: open and its guard disagree"]
        );
        let report = items
            .iter()
            .position(|i| text(i, "pk") == "G#g" && text(i, "sk") == "D#d1")
            .unwrap();
        items[report] = dispute("G#g", "D#d1", "upheld");
        assert_eq!(
            violations(&items, &objects),
            ["dispute d1: open and its queue entry disagree"]
        );
    }

    #[test]
    fn an_image_in_flight_is_not_an_orphan_and_an_unbound_card_must_be_revoked() {
        let mut items = one_binding_with_a_card();
        items.retain(|i| !["B#b", "L#r", "M#b"].contains(&text(i, "sk").as_str()));
        items[0] = item(&[("pk", "G#g"), ("sk", "COUNT"), ("bound", "0")]);
        items[2] = item(&[("pk", "R#r"), ("sk", "COUNT"), ("guardians", "0")]);
        items.push(item(&[("pk", "K#b"), ("sk", "OP#cards/b/s2.png")]));
        let objects = ["cards/b/s1.png".to_owned(), "cards/b/s2.png".to_owned()];
        assert_eq!(
            violations(&items, &objects),
            [
                "card s1 of unbound binding b is not revoked",
                "age transition AGE#b#end outlived its binding b",
            ]
        );
        items.retain(|i| text(i, "sk") != "AGE#b#end");
        items.push(item(&[("pk", "REVOKED"), ("sk", "s1")]));
        assert_eq!(violations(&items, &objects), Vec::<String>::new());
    }
}
