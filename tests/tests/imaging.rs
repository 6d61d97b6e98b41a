//! The QR images, the phone's kin code images and the offline cards decode with an independent reader: `zbarimg` (Debian
//! `zbar-tools`, ZBar's own QR decoder), not the crates that drew them.
//!
//! The household sheet's PDF is rendered at 300 dpi by `pdftoppm` (Debian `poppler-utils`), as a
//! printer would, and every card's QR read back from the pages.
//!
//! Set `KINCODE_IMAGES_DIR` to keep the images there for a look; otherwise they are written to a
//! temporary directory and removed.

use std::path::PathBuf;

use chrono::{Duration, TimeZone, Utc};
use kincode_common::domain::colour::HealthColour;
use kincode_common::domain::relationship::Relationship;
use kincode_common::imaging::card::{offline_card_png, OfflineCard};
use kincode_common::imaging::kin_code::{kin_code_png, KinCodeImage};
use kincode_common::imaging::qr::qr_png;
use kincode_common::imaging::sheet::household_sheet;
use kincode_tests::{pdftoppm, zbarimg};

/// `KC1:` then base45 characters, `chars` in all: 180 as in DESIGN.md, 222 as a real signed token.
fn token(chars: usize) -> String {
    const BASE45: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    let body: String = (0..chars - 4)
        .map(|i| BASE45[(i * 11 + i / 7) % BASE45.len()] as char)
        .collect();
    format!("KC1:{body}")
}

/// Where the images go, removed on drop unless the caller asked to keep them.
struct ImageDir {
    path: PathBuf,
    keep: bool,
}

impl ImageDir {
    fn new() -> Self {
        let (path, keep) = match std::env::var_os("KINCODE_IMAGES_DIR") {
            Some(dir) => (PathBuf::from(dir), true),
            None => {
                let name = format!("kincode-imaging-{}", uuid::Uuid::new_v4());
                (std::env::temp_dir().join(name), false)
            }
        };
        std::fs::create_dir_all(&path).expect("create the image directory");
        Self { path, keep }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, bytes).expect("write the file");
        path
    }
}

impl Drop for ImageDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[test]
fn every_qr_png_decodes_with_zbarimg() {
    let dir = ImageDir::new();
    for chars in [180, 222] {
        let token = token(chars);
        for colour in HealthColour::ALL {
            let png = qr_png(&token, colour).expect("QR PNG");
            let file = dir.write(&format!("qr-{}-{chars}.png", colour.as_str()), &png);
            assert_eq!(zbarimg(&file), vec![token.clone()], "{}", file.display());
        }
    }
}

#[test]
fn every_offline_card_decodes_with_zbarimg() {
    let dir = ImageDir::new();
    let generated_at = Utc.with_ymd_and_hms(2026, 11, 28, 17, 30, 0).unwrap();
    for chars in [180, 222] {
        let token = token(chars);
        for colour in HealthColour::ALL {
            let png = offline_card_png(&OfflineCard {
                colour,
                token: &token,
                masked_name: "**明",
                relationship_label: Relationship::Grandparent.label(),
                generated_at,
                valid_until: generated_at + Duration::days(7),
            })
            .expect("card PNG");
            let file = dir.write(&format!("card-{}-{chars}.png", colour.as_str()), &png);
            assert_eq!(zbarimg(&file), vec![token.clone()], "{}", file.display());
        }
    }
}

#[test]
fn every_kin_code_image_decodes_with_zbarimg() {
    let dir = ImageDir::new();
    let drawn_at = Utc.with_ymd_and_hms(2026, 11, 28, 17, 30, 9).unwrap();
    for chars in [180, 222] {
        let token = token(chars);
        for colour in HealthColour::ALL {
            let png = kin_code_png(&KinCodeImage {
                colour,
                token: &token,
                masked_name: "**明",
                relationship_label: Relationship::Child.label(),
                drawn_at,
            })
            .expect("kin code PNG");
            let file = dir.write(&format!("kin-code-{}-{chars}.png", colour.as_str()), &png);
            assert_eq!(zbarimg(&file), vec![token.clone()], "{}", file.display());
        }
    }
}

#[test]
fn every_card_on_a_household_sheet_decodes_from_the_pdf_printed_at_300_dpi() {
    let dir = ImageDir::new();
    let generated_at = Utc.with_ymd_and_hms(2026, 11, 28, 17, 30, 0).unwrap();
    // Five relatives (two pages), every colour, real-length tokens, each its own.
    let relatives = [
        (HealthColour::Green, "**明", Relationship::Child),
        (HealthColour::Yellow, "**华", Relationship::Parent),
        (HealthColour::Red, "*强", Relationship::Grandparent),
        (HealthColour::Green, "**丽", Relationship::Spouse),
        (HealthColour::Yellow, "*芳", Relationship::Grandchild),
    ];
    let tokens: Vec<String> = (0..relatives.len())
        .map(|i| {
            let t = token(222);
            format!("{}{}", &t[..t.len() - 1], i)
        })
        .collect();
    let cards: Vec<Vec<u8>> = relatives
        .iter()
        .zip(&tokens)
        .map(|(&(colour, name, relationship), token)| {
            offline_card_png(&OfflineCard {
                colour,
                token,
                masked_name: name,
                relationship_label: relationship.label(),
                generated_at,
                valid_until: generated_at + Duration::days(7),
            })
            .expect("card PNG")
        })
        .collect();
    let all: Vec<&[u8]> = cards.iter().map(Vec::as_slice).collect();
    let sheet = household_sheet(&all).expect("sheet");
    assert_eq!(sheet.pages, 2);
    dir.write("household-sheet-preview.png", &sheet.preview_png);
    let pdf = dir.write("household-sheet.pdf", &sheet.pdf);

    let pages = pdftoppm(&pdf, 300);
    assert_eq!(pages.len(), 2, "{pages:?}");
    let mut found: Vec<String> = pages.iter().flat_map(|page| zbarimg(page)).collect();
    found.sort();
    let mut expected = tokens.clone();
    expected.sort();
    assert_eq!(found, expected, "every card's QR, once");
    // Four on the first page, the fifth alone on the second.
    assert_eq!(zbarimg(&pages[0]).len(), 4);
    assert_eq!(zbarimg(&pages[1]), vec![tokens[4].clone()]);
}
