//! What every picture with text is drawn with: the embedded font, palettes of ink ramps, and
//! a canvas of palette indices with rectangles, QR modules and lines of text.
//!
//! Text is rasterised with `ab_glyph` from a font subset embedded in the binary (Lambda has no
//! system fonts) into an indexed-colour buffer: each ink used on a picture is a 16-step ramp of
//! palette entries from its background, which keeps anti-aliased text exact and the PNG small.
//! The font is parsed on the first picture that has text, never at cold start: a function that
//! answers JSON never touches it.

use std::sync::OnceLock;

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use chrono::{DateTime, Utc};

use super::qr::{QrMatrix, WHITE};
use super::{ImageError, IndexedPng};
use crate::domain::china_time::china_time;
use crate::domain::colour::HealthColour;

/// Noto Sans CJK SC Regular subset to GB 2312 level 1, ASCII and the pictures' labels; rebuilt
/// by `scripts/build-font-subset.sh` (see `common/assets/fonts/README.md`).
pub(super) static FONT_BYTES: &[u8] =
    include_bytes!("../../assets/fonts/KincodeSansSC-Subset-Regular.otf");

/// Drawn in place of a character the font lacks (a rare character in a name): an honest mask,
/// where the font's empty glyph would leave a blank box.
pub(super) const FALLBACK_CHAR: char = '*';

/// Which clock every printed or shown time is read on: a screenshot or a card that travels
/// says it, since a time without its zone is a guess.
pub(super) const CLOCK_LABEL: &str = "北京时间";

/// Ink on white: text and frames.
pub(super) const INK: [u8; 3] = [0x11, 0x11, 0x11];
/// Labels beside values.
pub(super) const CAPTION_INK: [u8; 3] = [0x4A, 0x4A, 0x4A];

/// The band's colour and the ink that reads best on it. Yellow is a true yellow here (the QR
/// uses dark amber): black on yellow is the highest-contrast pair of all.
pub(super) fn band(colour: HealthColour) -> ([u8; 3], [u8; 3]) {
    match colour {
        HealthColour::Green => ([0x0B, 0x8A, 0x43], WHITE),
        HealthColour::Yellow => ([0xFF, 0xD2, 0x00], [0x11, 0x11, 0x11]),
        HealthColour::Red => ([0xC6, 0x1A, 0x1A], WHITE),
    }
}

/// `at` on China's clock, as `format` (a `chrono` format string) writes it.
pub(super) fn china_clock(at: DateTime<Utc>, format: &str) -> String {
    china_time(at).format(format).to_string()
}

/// The embedded font, parsed once per process, on first use.
pub(super) fn font() -> Result<&'static FontRef<'static>, ImageError> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
        .ok_or(ImageError::Font)
}

/// `c` if the font can draw it, otherwise [`FALLBACK_CHAR`].
pub(super) fn drawable_char(font: &FontRef<'_>, c: char) -> char {
    if font.glyph_id(c).0 == 0 {
        FALLBACK_CHAR
    } else {
        c
    }
}

/// Ideographs sit in a 1-em box from 0.88 em above the baseline to 0.12 em below (Noto CJK's
/// OS/2 typo metrics).
pub(super) const EM_ASCENT: f32 = 0.88;

/// The baseline of a line of `px` type whose em box starts at `top`.
fn baseline(top: f32, px: f32) -> f32 {
    top + EM_ASCENT * px
}

/// How a run of text is drawn.
#[derive(Clone, Copy)]
pub(super) struct Style {
    pub(super) px: f32,
    /// Synthetic bold: each glyph is stamped this many extra pixels right and down. The subset
    /// has one weight (Regular); the large labels need heavier strokes to survive print.
    pub(super) weight: u32,
    pub(super) ramp: Ramp,
}

impl Style {
    pub(super) fn new(px: f32, weight: u32, ramp: Ramp) -> Self {
        Self { px, weight, ramp }
    }

    fn scaled(self, px: f32) -> Self {
        Self { px, ..self }
    }
}

/// Palette entries from a background (level 0) to an ink (level [`Ramp::LEVELS`] - 1).
#[derive(Clone, Copy)]
pub(super) struct Ramp {
    base: u8,
}

impl Ramp {
    const LEVELS: u8 = 16;

    pub(super) fn background(self) -> u8 {
        self.base
    }

    pub(super) fn ink(self) -> u8 {
        self.base + Self::LEVELS - 1
    }

    /// The level of a pixel this ramp's ink covers by `coverage` (0 to 1).
    fn level(coverage: f32) -> u8 {
        (coverage.clamp(0.0, 1.0) * f32::from(Self::LEVELS - 1)).round() as u8
    }
}

/// The RGB triples of a picture's palette, built a ramp at a time.
#[derive(Default)]
pub(super) struct Palette {
    pub(super) rgb: Vec<u8>,
}

impl Palette {
    pub(super) fn ramp(&mut self, background: [u8; 3], ink: [u8; 3]) -> Ramp {
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

/// Where a line of text sits between the canvas's margins.
#[derive(Clone, Copy)]
pub(super) enum Align {
    Left,
    Centre,
}

/// One palette index per pixel, rows top to bottom.
pub(super) struct Canvas {
    pub(super) width: u32,
    pub(super) height: u32,
    /// Text never comes closer than this to the left and right edges.
    margin: f32,
    pub(super) pixels: Vec<u8>,
}

impl Canvas {
    pub(super) fn new(width: u32, height: u32, margin: f32, background: u8) -> Self {
        let pixels = vec![background; width as usize * height as usize];
        Self {
            width,
            height,
            margin,
            pixels,
        }
    }

    /// The picture as an 8-bit indexed PNG, tagged with its print resolution if it has one.
    pub(super) fn into_png(
        self,
        palette: &Palette,
        dots_per_inch: Option<u32>,
    ) -> Result<Vec<u8>, ImageError> {
        IndexedPng {
            width: self.width,
            height: self.height,
            bit_depth: png::BitDepth::Eight,
            palette: &palette.rgb,
            rows: &self.pixels,
            dots_per_inch,
        }
        .encode()
    }

    /// Fills the part of the rectangle that lies on the canvas.
    pub(super) fn fill_rect(&mut self, left: u32, top: u32, width: u32, height: u32, index: u8) {
        let left = left.min(self.width) as usize;
        let right = left.saturating_add(width as usize).min(self.width as usize);
        for y in top..top.saturating_add(height).min(self.height) {
            let row = y as usize * self.width as usize;
            self.pixels[row + left..row + right].fill(index);
        }
    }

    /// The outline of the rectangle `[left, top, width, height]`, `thickness` pixels inside it.
    pub(super) fn frame(
        &mut self,
        [left, top, width, height]: [u32; 4],
        thickness: u32,
        index: u8,
    ) {
        self.fill_rect(left, top, width, thickness, index);
        self.fill_rect(left, top + height - thickness, width, thickness, index);
        self.fill_rect(left, top, thickness, height, index);
        self.fill_rect(left + width - thickness, top, thickness, height, index);
    }

    /// The QR code with its quiet zone, `module_px` pixels a module, from (`left`, `top`). Only
    /// dark modules are drawn: the quiet zone and light modules are the canvas's own white.
    pub(super) fn draw_qr(
        &mut self,
        matrix: &QrMatrix,
        left: u32,
        top: u32,
        module_px: u32,
        dark: u8,
    ) {
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
    pub(super) fn text(
        &mut self,
        font: &FontRef<'_>,
        text: &str,
        style: &Style,
        left: f32,
        top: f32,
    ) {
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

    /// Room for text between the margins.
    fn room(&self) -> f32 {
        self.width as f32 - 2.0 * self.margin
    }

    pub(super) fn text_centred(&mut self, font: &FontRef<'_>, text: &str, style: &Style, top: f32) {
        self.line(font, &[(text, *style)], Align::Centre, top);
    }

    /// Runs of text on one line, a gap of 0.4 of the first run's size between them, bottoms
    /// aligned on one baseline, the line's em box from `top`. A line too long for the margins
    /// shrinks as a whole, so labels and values keep their proportions.
    pub(super) fn line(
        &mut self,
        font: &FontRef<'_>,
        runs: &[(&str, Style)],
        align: Align,
        top: f32,
    ) {
        let Some(tallest) = runs.iter().map(|(_, s)| s.px).reduce(f32::max) else {
            return;
        };
        let shrink = shrink_to(font, runs, self.room());
        let gap = runs.first().map_or(0.0, |(_, s)| 0.4 * s.px) * shrink;
        let width = line_width(font, runs) * shrink;
        let mut x = match align {
            Align::Left => self.margin,
            Align::Centre => (self.width as f32 - width) / 2.0,
        };
        for (text, style) in runs {
            let style = style.scaled(style.px * shrink);
            // Every run sits on the baseline of the tallest at full size, shrunk or not.
            let run_top = top + EM_ASCENT * (tallest - style.px);
            self.text(font, text, &style, x, run_top);
            x += text_width(font, text, style.px) + gap;
        }
    }

    /// A label and its value from the left margin on one line, bottoms aligned; the value
    /// alone shrinks if it would run off the canvas (the label stays as large as its peers').
    pub(super) fn labelled_line(
        &mut self,
        font: &FontRef<'_>,
        label: (&str, &Style),
        value: (&str, &Style),
        top: f32,
    ) {
        let ((label, label_style), (value, value_style)) = (label, value);
        // Both runs share a baseline: the smaller label moves down by the difference.
        let label_top = top + EM_ASCENT * (value_style.px - label_style.px);
        self.text(font, label, label_style, self.margin, label_top);
        let gap = 0.4 * label_style.px;
        let value_left = self.margin + text_width(font, label, label_style.px) + gap;
        let room = self.width as f32 - self.margin - value_left;
        let fitted = fit(font, value, value_style, room);
        // Keep the shrunk value on the same baseline.
        let value_top = top + EM_ASCENT * (value_style.px - fitted.px);
        self.text(font, value, &fitted, value_left, value_top);
    }
}

/// Width of a line of runs as [`Canvas::line`] sets it at full size, gaps and bold included.
fn line_width(font: &FontRef<'_>, runs: &[(&str, Style)]) -> f32 {
    let gap = runs.first().map_or(0.0, |(_, s)| 0.4 * s.px);
    let texts: f32 = runs
        .iter()
        .map(|(text, style)| text_width(font, text, style.px) + style.weight as f32)
        .sum();
    texts + gap * runs.len().saturating_sub(1) as f32
}

/// The factor (at most 1) by which a line of runs must shrink to fit in `room` pixels.
fn shrink_to(font: &FontRef<'_>, runs: &[(&str, Style)], room: f32) -> f32 {
    let width = line_width(font, runs);
    if width > room && width > 0.0 {
        room.max(0.0) / width
    } else {
        1.0
    }
}

/// `style` at a size no larger than its own at which `text` fits in `room` pixels.
pub(super) fn fit(font: &FontRef<'_>, text: &str, style: &Style, room: f32) -> Style {
    // Synthetic bold adds a fixed `weight` pixels, whatever the size.
    let room = (room - style.weight as f32).max(0.0);
    let width = text_width(font, text, style.px);
    if width > room {
        style.scaled(style.px * room / width)
    } else {
        *style
    }
}

/// Advance width of `text` at `px`, as drawn (missing characters as [`FALLBACK_CHAR`]).
pub(super) fn text_width(font: &FontRef<'_>, text: &str, px: f32) -> f32 {
    let scaled = font.as_scaled(PxScale::from(px));
    text.chars()
        .map(|c| scaled.h_advance(font.glyph_id(drawable_char(font, c))))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn china_clock_is_utc_plus_eight() {
        // 17:30 UTC on 28 November is already 29 November in China.
        let at = Utc.with_ymd_and_hms(2026, 11, 28, 17, 30, 59).unwrap();
        assert_eq!(china_clock(at, "%Y-%m-%d %H:%M"), "2026-11-29 01:30");
        assert_eq!(china_clock(at, "%Y-%m-%d %H:%M:%S"), "2026-11-29 01:30:59");
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 15, 59, 0).unwrap();
        assert_eq!(china_clock(at, "%Y-%m-%d %H:%M"), "2026-12-31 23:59");
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
    fn the_font_draws_the_clock() {
        let font = font().unwrap();
        for c in CLOCK_LABEL.chars().chain("0123456789-: ".chars()) {
            assert_ne!(
                font.glyph_id(c).0,
                0,
                "{c:?} is missing from the font subset"
            );
        }
    }

    #[test]
    fn a_long_value_shrinks_to_fit() {
        let font = font().unwrap();
        let long = "很长的关系说明".repeat(10);
        let fitted = fit(font, &long, &Style::new(52.0, 1, Ramp { base: 0 }), 500.0);
        assert!(text_width(font, &long, fitted.px) + 1.0 <= 500.01);
    }

    #[test]
    fn a_long_line_shrinks_as_a_whole_within_the_margins() {
        let font = font().unwrap();
        let ramp = Ramp { base: 0 };
        let runs = [
            ("姓名", Style::new(30.0, 0, ramp)),
            (&*"名".repeat(40), Style::new(40.0, 1, ramp)),
        ];
        let shrink = shrink_to(font, &runs, 500.0);
        assert!(shrink < 1.0);
        assert!(line_width(font, &runs) * shrink <= 500.01);
        // A short line keeps its size.
        assert_eq!(shrink_to(font, &runs[..1], 500.0), 1.0);
    }

    /// The columns a line of text inked on a canvas, as the leftmost and rightmost.
    fn inked_columns(canvas: &Canvas, background: u8) -> Option<(u32, u32)> {
        let width = canvas.width as usize;
        let columns: Vec<u32> = (0..width)
            .filter(|&x| {
                canvas
                    .pixels
                    .iter()
                    .skip(x)
                    .step_by(width)
                    .any(|&p| p != background)
            })
            .map(|x| x as u32)
            .collect();
        Some((*columns.first()?, *columns.last()?))
    }

    #[test]
    fn lines_stay_between_the_margins_and_centre() {
        let font = font().unwrap();
        let mut palette = Palette::default();
        let ink = palette.ramp([255; 3], INK);
        let style = Style::new(40.0, 1, ink);
        let mut long = Canvas::new(400, 60, 20.0, ink.background());
        long.line(font, &[(&"码".repeat(30), style)], Align::Centre, 5.0);
        let (left, right) = inked_columns(&long, ink.background()).unwrap();
        assert!(left >= 19 && right <= 381, "{left}..{right}");

        let mut short = Canvas::new(400, 60, 20.0, ink.background());
        short.line(font, &[("亲属码", style)], Align::Centre, 5.0);
        let (left, right) = inked_columns(&short, ink.background()).unwrap();
        assert!(
            (i64::from(left) - i64::from(399 - right)).abs() <= 4,
            "{left}..{right}"
        );
    }
}
