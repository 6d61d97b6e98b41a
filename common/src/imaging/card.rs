//! The printable offline card: an A6 page with the colour, the QR code, who it is for and, large
//! enough for an elder to read at arm's length, when it was made and until when it is valid.
//!
//! Text is rasterised with `ab_glyph` from a font subset embedded in the binary (Lambda has no
//! system fonts) into an indexed-colour buffer: each ink used on the card is a 16-step ramp of
//! palette entries from its background, which keeps anti-aliased text exact and the PNG small.

use std::sync::OnceLock;

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use chrono::{DateTime, Utc};

use super::qr::{dark_shade, QrMatrix, WHITE};
use super::{ImageError, IndexedPng};
use crate::domain::china_time::china_time;
use crate::domain::colour::HealthColour;

/// A6 portrait (105 × 148 mm) at 200 dpi: sharp enough for print, small enough to draw in a few
/// milliseconds.
pub const CARD_DPI: u32 = 200;
pub const CARD_WIDTH_PX: u32 = 827;
pub const CARD_HEIGHT_PX: u32 = 1165;

/// Noto Sans CJK SC Regular subset to GB 2312 level 1, ASCII and the card's labels; rebuilt by
/// `scripts/build-font-subset.sh` (see `common/assets/fonts/README.md`).
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/KincodeSansSC-Subset-Regular.otf");

/// Drawn in place of a character the font lacks (a rare character in a name): an honest mask,
/// where the font's empty glyph would leave a blank box.
const FALLBACK_CHAR: char = '*';

const TITLE: &str = "亲属码·离线码";
const NAME_LABEL: &str = "姓名";
const RELATIONSHIP_LABEL: &str = "关系";
const GENERATED_LABEL: &str = "生成时间";
const VALID_UNTIL_LABEL: &str = "有效期至";
const NOT_FOR_ARRIVALS: &str = "亲属码现阶段不适用于“一场两站”";

/// What the offline card shows.
pub struct OfflineCard<'a> {
    pub colour: HealthColour,
    /// The QR payload.
    pub token: &'a str,
    /// Already masked, e.g. `**明`.
    pub masked_name: &'a str,
    /// The relationship's Chinese label, e.g. `祖父母/外祖父母`.
    pub relationship_label: &'a str,
    pub generated_at: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

/// The printable card as an 8-bit indexed PNG, [`CARD_WIDTH_PX`] × [`CARD_HEIGHT_PX`], tagged
/// [`CARD_DPI`] so it prints at A6.
pub fn offline_card_png(card: &OfflineCard<'_>) -> Result<Vec<u8>, ImageError> {
    let font = font()?;
    let matrix = QrMatrix::encode(card.token)?;

    let mut palette = Palette::default();
    let ink = palette.ramp(WHITE, [0x11, 0x11, 0x11]);
    let caption = palette.ramp(WHITE, [0x4A, 0x4A, 0x4A]);
    let shade = palette.ramp(WHITE, dark_shade(card.colour));
    let (band_colour, band_ink) = band(card.colour);
    let band = palette.ramp(band_colour, band_ink);

    let mut canvas = Canvas::new(CARD_WIDTH_PX, CARD_HEIGHT_PX, ink.background());
    let centre = CARD_WIDTH_PX as f32 / 2.0;

    // The colour band: what the card is (a kin code, offline) and the colour, readable at a glance.
    canvas.fill_rect(0, 0, CARD_WIDTH_PX, layout::BAND_HEIGHT, band.background());
    let title = Style::new(layout::TITLE_PX, 1, band);
    canvas.text_centred(font, TITLE, &title, centre, layout::TITLE_TOP);
    let colour = Style::new(layout::COLOUR_PX, 3, band);
    canvas.text_centred(
        font,
        card.colour.label(),
        &colour,
        centre,
        layout::COLOUR_TOP,
    );

    // The QR in the colour's dark shade, as large as the space allows in whole-pixel modules.
    let modules = matrix.size_with_quiet_zone();
    let module_px = (layout::QR_BOX / modules).max(1);
    let qr_side = modules * module_px;
    let qr_left = CARD_WIDTH_PX.saturating_sub(qr_side) / 2;
    let qr_top = layout::QR_TOP + layout::QR_BOX.saturating_sub(qr_side) / 2;
    canvas.draw_qr(&matrix, qr_left, qr_top, module_px, shade.ink());

    // Who the card is for.
    let label = Style::new(layout::DETAIL_LABEL_PX, 0, caption);
    let value = Style::new(layout::DETAIL_PX, 1, ink);
    let details = [
        (NAME_LABEL, card.masked_name, layout::NAME_TOP),
        (
            RELATIONSHIP_LABEL,
            card.relationship_label,
            layout::RELATIONSHIP_TOP,
        ),
    ];
    for (name, text, top) in details {
        canvas.labelled_line(font, (name, &label), (text, &value), top);
    }

    // The time mark: boxed, black on white, in the largest type after the colour.
    canvas.frame(layout::TIME_BOX, layout::TIME_BOX_BORDER, ink.ink());
    let label = Style::new(layout::TIME_LABEL_PX, 1, ink);
    let value = Style::new(layout::TIME_PX, 2, ink);
    let times = [
        (GENERATED_LABEL, card.generated_at, layout::GENERATED_TOP),
        (VALID_UNTIL_LABEL, card.valid_until, layout::VALID_UNTIL_TOP),
    ];
    for (name, at, top) in times {
        canvas.labelled_line(font, (name, &label), (&china_minute(at), &value), top);
    }

    let notice = Style::new(layout::NOTICE_PX, 0, ink);
    canvas.text_centred(font, NOT_FOR_ARRIVALS, &notice, centre, layout::NOTICE_TOP);

    IndexedPng {
        width: CARD_WIDTH_PX,
        height: CARD_HEIGHT_PX,
        bit_depth: png::BitDepth::Eight,
        palette: &palette.rgb,
        rows: &canvas.pixels,
        dots_per_inch: Some(CARD_DPI),
    }
    .encode()
}

/// Where things go and how large, in pixels (at 200 dpi, 1 mm is 7.9 px; type `px` is the em).
mod layout {
    pub const BAND_HEIGHT: u32 = 236;
    pub const TITLE_TOP: f32 = 22.0;
    pub const TITLE_PX: f32 = 64.0;
    pub const COLOUR_TOP: f32 = 100.0;
    pub const COLOUR_PX: f32 = 112.0;
    /// Square the QR code, quiet zone included, is fitted into: 8 px (1 mm) modules for a token.
    pub const QR_BOX: u32 = 500;
    pub const QR_TOP: u32 = 236;
    /// Left edge of the name, relationship and time lines.
    pub const LEFT: f32 = 64.0;
    pub const DETAIL_LABEL_PX: f32 = 40.0;
    pub const DETAIL_PX: f32 = 52.0;
    pub const NAME_TOP: f32 = 726.0;
    pub const RELATIONSHIP_TOP: f32 = 790.0;
    /// Left, top, width, height.
    pub const TIME_BOX: [u32; 4] = [36, 864, 755, 202];
    pub const TIME_BOX_BORDER: u32 = 4;
    /// 72 px is 9 mm, about 26 pt: legible at arm's length without reading glasses.
    pub const TIME_LABEL_PX: f32 = 60.0;
    pub const TIME_PX: f32 = 72.0;
    pub const GENERATED_TOP: f32 = 880.0;
    pub const VALID_UNTIL_TOP: f32 = 972.0;
    pub const NOTICE_TOP: f32 = 1092.0;
    pub const NOTICE_PX: f32 = 40.0;
}

/// The band's colour and the ink that reads best on it. Yellow is a true yellow here (the QR
/// uses dark amber): black on yellow is the highest-contrast pair of all.
fn band(colour: HealthColour) -> ([u8; 3], [u8; 3]) {
    match colour {
        HealthColour::Green => ([0x0B, 0x8A, 0x43], WHITE),
        HealthColour::Yellow => ([0xFF, 0xD2, 0x00], [0x11, 0x11, 0x11]),
        HealthColour::Red => ([0xC6, 0x1A, 0x1A], WHITE),
    }
}

/// `YYYY-MM-DD HH:MM` in China time.
fn china_minute(at: DateTime<Utc>) -> String {
    china_time(at).format("%Y-%m-%d %H:%M").to_string()
}

/// The embedded font, parsed once per process.
fn font() -> Result<&'static FontRef<'static>, ImageError> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
        .ok_or(ImageError::Font)
}

/// `c` if the font can draw it, otherwise [`FALLBACK_CHAR`].
fn drawable_char(font: &FontRef<'_>, c: char) -> char {
    if font.glyph_id(c).0 == 0 {
        FALLBACK_CHAR
    } else {
        c
    }
}

/// Ideographs sit in a 1-em box from 0.88 em above the baseline to 0.12 em below (Noto CJK's
/// OS/2 typo metrics).
const EM_ASCENT: f32 = 0.88;

/// The baseline of a line of `px` type whose em box starts at `top`.
fn baseline(top: f32, px: f32) -> f32 {
    top + EM_ASCENT * px
}

/// How a run of text is drawn.
struct Style {
    px: f32,
    /// Synthetic bold: each glyph is stamped this many extra pixels right and down. The subset
    /// has one weight (Regular); the large labels need heavier strokes to survive print.
    weight: u32,
    ramp: Ramp,
}

impl Style {
    fn new(px: f32, weight: u32, ramp: Ramp) -> Self {
        Self { px, weight, ramp }
    }
}

/// Palette entries from a background (level 0) to an ink (level [`Ramp::LEVELS`] - 1).
#[derive(Clone, Copy)]
struct Ramp {
    base: u8,
}

impl Ramp {
    const LEVELS: u8 = 16;

    fn background(self) -> u8 {
        self.base
    }

    fn ink(self) -> u8 {
        self.base + Self::LEVELS - 1
    }

    /// The level of a pixel this ramp's ink covers by `coverage` (0 to 1).
    fn level(coverage: f32) -> u8 {
        (coverage.clamp(0.0, 1.0) * f32::from(Self::LEVELS - 1)).round() as u8
    }
}

#[derive(Default)]
struct Palette {
    rgb: Vec<u8>,
}

impl Palette {
    fn ramp(&mut self, background: [u8; 3], ink: [u8; 3]) -> Ramp {
        let base = (self.rgb.len() / 3) as u8;
        let last = f32::from(Ramp::LEVELS - 1);
        for level in 0..Ramp::LEVELS {
            let t = f32::from(level) / last;
            for (bg, fg) in background.into_iter().zip(ink) {
                let mixed = f32::from(bg) + (f32::from(fg) - f32::from(bg)) * t;
                self.rgb.push(mixed.round() as u8);
            }
        }
        Ramp { base }
    }
}

/// One palette index per pixel, rows top to bottom.
struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: u32, height: u32, background: u8) -> Self {
        let pixels = vec![background; width as usize * height as usize];
        Self {
            width,
            height,
            pixels,
        }
    }

    /// Fills the part of the rectangle that lies on the canvas.
    fn fill_rect(&mut self, left: u32, top: u32, width: u32, height: u32, index: u8) {
        let left = left.min(self.width) as usize;
        let right = left.saturating_add(width as usize).min(self.width as usize);
        for y in top..top.saturating_add(height).min(self.height) {
            let row = y as usize * self.width as usize;
            self.pixels[row + left..row + right].fill(index);
        }
    }

    /// The outline of the rectangle `[left, top, width, height]`, `thickness` pixels inside it.
    fn frame(&mut self, [left, top, width, height]: [u32; 4], thickness: u32, index: u8) {
        self.fill_rect(left, top, width, thickness, index);
        self.fill_rect(left, top + height - thickness, width, thickness, index);
        self.fill_rect(left, top, thickness, height, index);
        self.fill_rect(left + width - thickness, top, thickness, height, index);
    }

    fn draw_qr(&mut self, matrix: &QrMatrix, left: u32, top: u32, module_px: u32, dark: u8) {
        let modules = matrix.size_with_quiet_zone();
        for my in 0..modules {
            for mx in 0..modules {
                if matrix.is_dark_with_quiet_zone(mx, my) {
                    let (x, y) = (left + mx * module_px, top + my * module_px);
                    self.fill_rect(x, y, module_px, module_px, dark);
                }
            }
        }
    }

    /// Sets a pixel to `level` of `ramp`, unless it already has at least that much of its ink
    /// (overlapping glyph edges and synthetic bold stamps).
    fn cover(&mut self, x: i64, y: i64, ramp: Ramp, level: u8) {
        if level == 0 || x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height)
        {
            return;
        }
        let pixel = &mut self.pixels[y as usize * self.width as usize + x as usize];
        let same_ramp_at_least =
            *pixel >= ramp.base && *pixel - ramp.base >= level && *pixel <= ramp.ink();
        if !same_ramp_at_least {
            *pixel = ramp.base + level;
        }
    }

    /// Draws `text` with its first glyph's origin at `left` and its line box starting at `top`.
    fn text(&mut self, font: &FontRef<'_>, text: &str, style: &Style, left: f32, top: f32) {
        let scale = PxScale::from(style.px);
        let scaled = font.as_scaled(scale);
        let baseline = baseline(top, style.px);
        let mut x = left;
        for c in text.chars() {
            let id = font.glyph_id(drawable_char(font, c));
            let glyph = id.with_scale_and_position(scale, point(x, baseline));
            x += scaled.h_advance(id);
            let Some(outlined) = font.outline_glyph(glyph) else {
                continue; // a space
            };
            let bounds = outlined.px_bounds();
            let (gx, gy) = (bounds.min.x as i64, bounds.min.y as i64);
            let weight = i64::from(style.weight);
            outlined.draw(|px, py, coverage| {
                let level = Ramp::level(coverage);
                for dy in 0..=weight {
                    for dx in 0..=weight {
                        let (x, y) = (gx + i64::from(px) + dx, gy + i64::from(py) + dy);
                        self.cover(x, y, style.ramp, level);
                    }
                }
            });
        }
    }

    fn text_centred(
        &mut self,
        font: &FontRef<'_>,
        text: &str,
        style: &Style,
        centre: f32,
        top: f32,
    ) {
        let style = fit(font, text, style, self.width as f32 - 2.0 * layout::LEFT);
        let left = centre - text_width(font, text, style.px) / 2.0;
        self.text(font, text, &style, left, top);
    }

    /// A label and its value on one line from [`layout::LEFT`], bottoms aligned; the value
    /// shrinks if it would run off the card.
    fn labelled_line(
        &mut self,
        font: &FontRef<'_>,
        label: (&str, &Style),
        value: (&str, &Style),
        top: f32,
    ) {
        let ((label, label_style), (value, value_style)) = (label, value);
        // Both lines share a baseline: the smaller label moves down by the difference.
        let label_top = top + EM_ASCENT * (value_style.px - label_style.px);
        self.text(font, label, label_style, layout::LEFT, label_top);
        let gap = 0.4 * label_style.px;
        let value_left = layout::LEFT + text_width(font, label, label_style.px) + gap;
        let room = self.width as f32 - layout::LEFT - value_left;
        let fitted = fit(font, value, value_style, room);
        // Keep the shrunk value on the same baseline.
        let value_top = top + EM_ASCENT * (value_style.px - fitted.px);
        self.text(font, value, &fitted, value_left, value_top);
    }
}

/// `style` at a size no larger than its own at which `text` fits in `room` pixels.
fn fit(font: &FontRef<'_>, text: &str, style: &Style, room: f32) -> Style {
    // Synthetic bold adds a fixed `weight` pixels, whatever the size.
    let room = (room - style.weight as f32).max(0.0);
    let width = text_width(font, text, style.px);
    let px = if width > room {
        style.px * room / width
    } else {
        style.px
    };
    Style::new(px, style.weight, style.ramp)
}

/// Advance width of `text` at `px`, as drawn (missing characters as [`FALLBACK_CHAR`]).
fn text_width(font: &FontRef<'_>, text: &str, px: f32) -> f32 {
    let scaled = font.as_scaled(PxScale::from(px));
    text.chars()
        .map(|c| scaled.h_advance(font.glyph_id(drawable_char(font, c))))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::relationship::Relationship;
    use crate::imaging::test_support::{
        decode_qr_codes, grey_pixels, sample_token, REAL_TOKEN_CHARS,
    };
    use chrono::TimeZone;

    fn card(colour: HealthColour, token: &str) -> OfflineCard<'_> {
        let generated_at = Utc.with_ymd_and_hms(2026, 11, 28, 17, 30, 0).unwrap();
        OfflineCard {
            colour,
            token,
            masked_name: "**明",
            relationship_label: Relationship::Grandparent.label(),
            generated_at,
            valid_until: generated_at + chrono::Duration::days(7),
        }
    }

    #[test]
    fn every_colours_card_carries_the_exact_token() {
        let token = sample_token(REAL_TOKEN_CHARS);
        for colour in HealthColour::ALL {
            let png = offline_card_png(&card(colour, &token)).unwrap();
            assert_eq!(decode_qr_codes(&png), vec![token.clone()], "{colour:?}");
        }
    }

    #[test]
    fn the_card_is_a6_portrait_at_print_resolution() {
        let png =
            offline_card_png(&card(HealthColour::Green, &sample_token(REAL_TOKEN_CHARS))).unwrap();
        let (width, height, _) = grey_pixels(&png);
        assert_eq!(
            (width, height),
            (CARD_WIDTH_PX as usize, CARD_HEIGHT_PX as usize)
        );
        let mm = |px: usize| px as f64 / f64::from(CARD_DPI) * 25.4;
        assert!((mm(width) - 105.0).abs() < 0.5, "{} mm wide", mm(width));
        assert!((mm(height) - 148.0).abs() < 0.5, "{} mm high", mm(height));

        let decoder = png::Decoder::new(std::io::Cursor::new(&png[..]));
        let info = decoder.read_info().unwrap();
        let dims = info.info().pixel_dims.unwrap();
        assert_eq!((dims.xppu, dims.unit), (7874, png::Unit::Meter), "200 dpi");
    }

    #[test]
    fn times_are_china_time_to_the_minute() {
        // 17:30 UTC on 28 November is already 29 November in China.
        let at = Utc.with_ymd_and_hms(2026, 11, 28, 17, 30, 59).unwrap();
        assert_eq!(china_minute(at), "2026-11-29 01:30");
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 15, 59, 0).unwrap();
        assert_eq!(china_minute(at), "2026-12-31 23:59");
    }

    #[test]
    fn a_character_missing_from_the_font_is_drawn_as_an_asterisk() {
        let font = font().unwrap();
        assert_eq!(drawable_char(font, '明'), '明');
        assert_eq!(drawable_char(font, 'A'), 'A');
        // 𠀀 (CJK extension B) and 琪 (GB 2312 level 2) are outside the subset.
        assert_eq!(drawable_char(font, '𠀀'), '*');
        assert_eq!(drawable_char(font, '琪'), '*');
        assert_ne!(
            font.glyph_id('*').0,
            0,
            "the fallback itself must be drawable"
        );
        // A name with a missing character still renders a scannable card.
        let token = sample_token(REAL_TOKEN_CHARS);
        let png = offline_card_png(&OfflineCard {
            masked_name: "**𠀀",
            ..card(HealthColour::Red, &token)
        });
        assert_eq!(decode_qr_codes(&png.unwrap()), vec![token]);
    }

    #[test]
    fn the_font_draws_every_fixed_text_on_the_card() {
        let font = font().unwrap();
        let mut texts = vec![
            TITLE,
            NAME_LABEL,
            RELATIONSHIP_LABEL,
            GENERATED_LABEL,
            VALID_UNTIL_LABEL,
            NOT_FOR_ARRIVALS,
            "0123456789-: *",
        ];
        texts.extend(HealthColour::ALL.map(HealthColour::label));
        texts.extend(Relationship::ALL.map(Relationship::label));
        for text in texts {
            for c in text.chars() {
                assert_ne!(
                    font.glyph_id(c).0,
                    0,
                    "{c:?} of {text:?} is missing from the font subset"
                );
            }
        }
    }

    #[test]
    fn the_font_is_the_renamed_subset() {
        // GB 2312 level 1: first and last character.
        let font = font().unwrap();
        assert_ne!(font.glyph_id('啊').0, 0);
        assert_ne!(font.glyph_id('座').0, 0);
        assert!(FONT_BYTES.len() < 1_600_000, "{} bytes", FONT_BYTES.len());
        let family = "KincodeSans SC Subset"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect::<Vec<_>>();
        assert!(FONT_BYTES.windows(family.len()).any(|w| w == family));
    }

    #[test]
    fn long_text_shrinks_to_fit_instead_of_running_off_the_card() {
        let token = sample_token(REAL_TOKEN_CHARS);
        let long = "很长的关系说明".repeat(10);
        let png = offline_card_png(&OfflineCard {
            relationship_label: &long,
            ..card(HealthColour::Yellow, &token)
        });
        assert_eq!(decode_qr_codes(&png.unwrap()), vec![token]);
        let font = font().unwrap();
        let fitted = fit(font, &long, &Style::new(52.0, 1, Ramp { base: 0 }), 500.0);
        assert!(text_width(font, &long, fitted.px) + 1.0 <= 500.01);
    }

    #[test]
    fn odd_names_and_labels_still_make_a_card() {
        let token = sample_token(REAL_TOKEN_CHARS);
        let long = "名".repeat(10_000);
        for (name, relationship) in [("", ""), ("\n\t\u{0}", "\u{3000}"), (&long[..], &long[..])] {
            let png = offline_card_png(&OfflineCard {
                masked_name: name,
                relationship_label: relationship,
                ..card(HealthColour::Green, &token)
            });
            assert_eq!(decode_qr_codes(&png.unwrap()), vec![token.clone()]);
        }
    }

    #[test]
    fn a_token_too_long_for_a_qr_code_is_an_error() {
        let text = "A".repeat(5000);
        let result = offline_card_png(&card(HealthColour::Green, &text));
        assert!(matches!(result, Err(ImageError::TooLongForQr { .. })));
    }
}
