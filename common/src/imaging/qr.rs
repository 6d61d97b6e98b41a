//! The QR code of a code token, as the PNG a phone shows; the offline card draws the same matrix.

use qrcode::bits::encode_auto;
use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::ec::construct_codewords;
use qrcode::types::QrError;
use qrcode::{Color, EcLevel};

use super::{ImageError, IndexedPng};
use crate::domain::colour::HealthColour;

/// Pixels per module on the phone image. A real token (222 base45 characters) is a version-9 code
/// at level M (53 modules, 61 with the quiet zone), so 61 × 8 = 488 px; a 180-character one is
/// version 8, 456 px. Sharp on any phone screen without scaling, and large enough for a scanner.
pub const QR_MODULE_PX: u32 = 8;

/// Light modules on each side, as ISO/IEC 18004 requires for a reliable scan.
pub const QUIET_ZONE_MODULES: u32 = 4;

/// Paper white: the light modules and the quiet zone.
pub(crate) const WHITE: [u8; 3] = [0xFF, 0xFF, 0xFF];

/// The colour dark modules are drawn in: the health colour's dark shade, so the code itself shows
/// the colour while keeping the contrast with white a scanner needs (at least 5.5:1; yellow is
/// the lowest, green and red are above 7:1).
/// Yellow is a dark amber: pure yellow is almost as bright as white to a greyscale camera.
pub fn dark_shade(colour: HealthColour) -> [u8; 3] {
    match colour {
        HealthColour::Green => [0x00, 0x66, 0x33],
        HealthColour::Yellow => [0x8A, 0x5C, 0x00],
        HealthColour::Red => [0xA8, 0x10, 0x16],
    }
}

/// The module grid of a QR code, without its quiet zone.
pub(crate) struct QrMatrix {
    /// Modules per side.
    pub(crate) size: u32,
    dark: Vec<bool>,
}

/// The eight data masks, in the order the `qrcode` crate tries them (the first of equal scores wins).
const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

impl QrMatrix {
    /// Encodes `text` at error-correction level M, in the smallest version that holds it. The
    /// encoder picks the QR alphanumeric mode for base45 text (5.5 bits per character).
    ///
    /// The same steps as `qrcode::QrCode::with_bits`, except the choice of data mask: the crate
    /// scores masks in over a millisecond per code (its finder-pattern rule allocates a closure
    /// per module); the same score over a plain grid takes about 25 µs per mask. A unit test
    /// checks that both pick the same mask.
    pub(crate) fn encode(text: &str) -> Result<Self, ImageError> {
        let qr_error = |e| match e {
            QrError::DataTooLong => ImageError::TooLongForQr {
                chars: text.chars().count(),
            },
            other => ImageError::Qr(other),
        };
        let bits = encode_auto(text.as_bytes(), EcLevel::M).map_err(qr_error)?;
        let version = bits.version();
        let (data, error_correction) =
            construct_codewords(&bits.into_bytes(), version, EcLevel::M).map_err(qr_error)?;
        let mut unmasked = Canvas::new(version, EcLevel::M);
        unmasked.draw_all_functional_patterns();
        unmasked.draw_data(&data, &error_correction);

        let size = version.width() as u32;
        let masked = MASKS.map(|mask| {
            let mut canvas = unmasked.clone();
            canvas.apply_mask(mask);
            let dark = canvas
                .into_colors()
                .into_iter()
                .map(|c| c == Color::Dark)
                .collect();
            Self { size, dark }
        });
        masked
            .into_iter()
            .min_by_key(Self::mask_penalty)
            .ok_or(ImageError::Qr(QrError::InvalidVersion))
    }

    /// How badly a masked grid would scan (ISO/IEC 18004 §7.8.3, scored as the `qrcode` crate
    /// does): long runs of one colour, 2×2 blocks, finder-like patterns, dark/light imbalance.
    fn mask_penalty(&self) -> u32 {
        let n = self.size as usize;
        let columns: Vec<bool> = (0..n)
            .flat_map(|x| (0..n).map(move |y| (x, y)))
            .map(|(x, y)| self.dark[y * n + x])
            .collect();
        let lines = self.dark.chunks_exact(n).chain(columns.chunks_exact(n));
        let mut penalty: u32 = lines.map(line_penalty).sum();
        for (row, below) in self
            .dark
            .chunks_exact(n)
            .zip(self.dark.chunks_exact(n).skip(1))
        {
            for x in 0..n - 1 {
                let c = row[x];
                penalty += 3 * u32::from((c == row[x + 1]) & (c == below[x]) & (c == below[x + 1]));
            }
        }
        let dark_modules = self.dark.iter().filter(|&&d| d).count();
        penalty + (dark_modules * 200 / self.dark.len()).abs_diff(100) as u32
    }

    /// Modules per side including the quiet zone on both sides.
    pub(crate) fn size_with_quiet_zone(&self) -> u32 {
        self.size + 2 * QUIET_ZONE_MODULES
    }

    /// Whether the module at (`x`, `y`), counted from the outer corner of the quiet zone, is dark.
    pub(crate) fn is_dark_with_quiet_zone(&self, x: u32, y: u32) -> bool {
        let (Some(x), Some(y)) = (
            x.checked_sub(QUIET_ZONE_MODULES),
            y.checked_sub(QUIET_ZONE_MODULES),
        ) else {
            return false;
        };
        x < self.size && y < self.size && self.dark[(y * self.size + x) as usize]
    }
}

/// The penalties of one row or column: runs of five or more modules of one colour, and finder-like
/// patterns with four light modules on either side (beyond the grid counts as light).
///
/// Written without data-dependent branches (`&`, not `&&`; arithmetic, not `if`): on a masked
/// grid, which looks random, mispredicted branches would cost more than the arithmetic.
fn line_penalty(line: &[bool]) -> u32 {
    let mut penalty = 0;
    let mut run = 1u32;
    for pair in line.windows(2) {
        let same = u32::from(pair[0] == pair[1]);
        // A run ends here: five modules cost 3, each one more costs 1.
        penalty += (1 - same) * u32::from(run >= 5) * run.saturating_sub(2);
        run = run * same + 1;
    }
    penalty += u32::from(run >= 5) * run.saturating_sub(2);

    for (j, w) in line.windows(7).enumerate() {
        let finder_like = w[0] & !w[1] & w[2] & w[3] & w[4] & !w[5] & w[6];
        if finder_like {
            let light_before = !line[j.saturating_sub(4)..j].contains(&true);
            let light_after = !line[j + 7..(j + 11).min(line.len())].contains(&true);
            penalty += 40 * u32::from(light_before | light_after);
        }
    }
    penalty
}

/// PNG of the QR code of `text`: a 1-bit indexed image (white, and the colour's dark shade),
/// [`QR_MODULE_PX`] pixels per module, with a [`QUIET_ZONE_MODULES`]-module quiet zone.
pub fn qr_png(text: &str, colour: HealthColour) -> Result<Vec<u8>, ImageError> {
    let matrix = QrMatrix::encode(text)?;
    let modules = matrix.size_with_quiet_zone();
    let side = modules * QR_MODULE_PX;
    let row_bytes = side.div_ceil(8) as usize;

    // One packed pixel row per module row, repeated QR_MODULE_PX times. Index 1 is dark.
    let mut rows = Vec::with_capacity(row_bytes * side as usize);
    let mut row = vec![0u8; row_bytes];
    for my in 0..modules {
        row.fill(0);
        for px in 0..side {
            if matrix.is_dark_with_quiet_zone(px / QR_MODULE_PX, my) {
                row[(px / 8) as usize] |= 0x80 >> (px % 8);
            }
        }
        for _ in 0..QR_MODULE_PX {
            rows.extend_from_slice(&row);
        }
    }

    let [dr, dg, db] = dark_shade(colour);
    let [wr, wg, wb] = WHITE;
    IndexedPng {
        width: side,
        height: side,
        bit_depth: png::BitDepth::One,
        palette: &[wr, wg, wb, dr, dg, db],
        rows: &rows,
        dots_per_inch: None,
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::test_support::{
        decode_qr_codes, grey_pixels, sample_token, REAL_TOKEN_CHARS,
    };

    #[test]
    fn every_colour_decodes_back_to_the_exact_token() {
        for chars in [180, REAL_TOKEN_CHARS] {
            let token = sample_token(chars);
            for colour in HealthColour::ALL {
                let png = qr_png(&token, colour).unwrap();
                assert_eq!(decode_qr_codes(&png), vec![token.clone()], "{colour:?}");
            }
        }
    }

    #[test]
    fn a_token_is_a_version_8_or_9_code_400_to_500_px_wide() {
        // Level M in alphanumeric mode: version 8 holds 221 characters, version 9 holds 262.
        for (chars, modules, px) in [(180, 49, 456), (REAL_TOKEN_CHARS, 53, 488)] {
            let token = sample_token(chars);
            assert_eq!(
                QrMatrix::encode(&token).unwrap().size,
                modules,
                "{chars} characters"
            );
            let (width, height, _) = grey_pixels(&qr_png(&token, HealthColour::Green).unwrap());
            assert_eq!((width, height), (px, px));
        }
    }

    #[test]
    fn modules_are_whole_pixels_with_a_white_quiet_zone() {
        let png = qr_png(&sample_token(REAL_TOKEN_CHARS), HealthColour::Yellow).unwrap();
        let (width, _, grey) = grey_pixels(&png);
        let quiet = (QUIET_ZONE_MODULES * QR_MODULE_PX) as usize;
        for y in 0..width {
            for x in 0..width {
                let inside =
                    (quiet..width - quiet).contains(&x) && (quiet..width - quiet).contains(&y);
                if !inside {
                    assert_eq!(grey[y * width + x], 255, "quiet zone at ({x}, {y})");
                }
            }
        }
        // The top-left finder pattern starts with a dark module exactly at the quiet zone's edge.
        assert!(grey[quiet * width + quiet] < 128);
        assert_eq!(grey[(quiet - 1) * width + quiet - 1], 255);
    }

    #[test]
    fn dark_shades_contrast_with_white_for_a_greyscale_scanner() {
        // WCAG relative luminance and contrast ratio.
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        for colour in HealthColour::ALL {
            let [r, g, b] = dark_shade(colour);
            let luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
            let contrast = 1.05 / (luminance + 0.05);
            assert!(contrast >= 5.5, "{colour:?}: contrast {contrast:.2}:1");
        }
        let [r, g, b] = dark_shade(HealthColour::Yellow);
        assert!(
            r > g && g > b,
            "the yellow code is amber, not brown-grey or green"
        );
    }

    #[test]
    fn the_matrix_is_the_one_the_qrcode_crate_builds() {
        for chars in [4, 20, 180, REAL_TOKEN_CHARS, 600, 2000] {
            let token = sample_token(chars);
            let ours = QrMatrix::encode(&token).unwrap();
            let theirs = qrcode::QrCode::with_error_correction_level(&token, EcLevel::M).unwrap();
            assert_eq!(ours.size as usize, theirs.width(), "{chars} characters");
            let theirs: Vec<bool> = theirs
                .into_colors()
                .into_iter()
                .map(|c| c == Color::Dark)
                .collect();
            assert!(
                ours.dark == theirs,
                "{chars} characters: a different mask was chosen"
            );
        }
    }

    #[test]
    fn too_much_text_is_an_error_not_a_panic() {
        let text = "A".repeat(5000);
        assert!(matches!(
            qr_png(&text, HealthColour::Red),
            Err(ImageError::TooLongForQr { chars: 5000 })
        ));
    }
}
