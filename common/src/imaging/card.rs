//! The printable offline card: an A6 page with the colour, the QR code, who it is for and, large
//! enough for an elder to read at arm's length, when it was made and until when it is valid, on
//! which clock.

use chrono::{DateTime, Utc};

use super::draw::{
    band, china_clock, font, text_width, Canvas, Palette, Style, CAPTION_INK, CLOCK_LABEL, INK,
};
use super::qr::{dark_shade, QrMatrix, WHITE};
use super::ImageError;
use crate::domain::colour::HealthColour;

/// A6 portrait (105 × 148 mm) at 200 dpi: sharp enough for print, small enough to draw in a few
/// milliseconds.
pub const CARD_DPI: u32 = 200;
pub const CARD_WIDTH_PX: u32 = 827;
pub const CARD_HEIGHT_PX: u32 = 1165;

const TITLE: &str = "亲属码·离线码";
const NAME_LABEL: &str = "姓名";
const RELATIONSHIP_LABEL: &str = "关系";
const GENERATED_LABEL: &str = "生成时间";
const VALID_UNTIL_LABEL: &str = "有效期至";
const NOT_FOR_ARRIVALS: &str = "亲属码现阶段不适用于“一场两站”";
/// How far below a line's top the ink of ideographs is centred, as a fraction of its size
/// (measured on the subset: a 36 px line inks from 11 to 34 px below its top).
const IDEOGRAPH_INK_CENTRE: f32 = 0.625;
/// The card's times to the minute: a card lives 7 days.
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M";

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
    let ink = palette.ramp(WHITE, INK);
    let caption = palette.ramp(WHITE, CAPTION_INK);
    let shade = palette.ramp(WHITE, dark_shade(card.colour));
    let (band_colour, band_ink) = band(card.colour);
    let band = palette.ramp(band_colour, band_ink);

    let mut canvas = Canvas::new(
        CARD_WIDTH_PX,
        CARD_HEIGHT_PX,
        layout::LEFT,
        ink.background(),
    );

    // The colour band: what the card is (a kin code, offline) and the colour, readable at a glance.
    canvas.fill_rect(0, 0, CARD_WIDTH_PX, layout::BAND_HEIGHT, band.background());
    let title = Style::new(layout::TITLE_PX, 1, band);
    canvas.text_centred(font, TITLE, &title, layout::TITLE_TOP);
    let colour = Style::new(layout::COLOUR_PX, 3, band);
    canvas.text_centred(font, card.colour.label(), &colour, layout::COLOUR_TOP);

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

    // The time mark: boxed, black on white, in the largest type after the colour. The box's
    // legend names the clock, as a fieldset's does: both times are read on it, and the times
    // keep their size (an elder reads them at arm's length).
    canvas.frame(layout::TIME_BOX, layout::TIME_BOX_BORDER, ink.ink());
    let legend = Style::new(layout::LEGEND_PX, 1, ink);
    let [box_left, box_top, ..] = layout::TIME_BOX;
    let legend_width = text_width(font, CLOCK_LABEL, legend.px) + 1.0;
    let legend_left = box_left + layout::LEGEND_INSET;
    let legend_pad = layout::LEGEND_PAD;
    canvas.fill_rect(
        legend_left - legend_pad,
        box_top,
        legend_width as u32 + 2 * legend_pad,
        layout::TIME_BOX_BORDER,
        ink.background(),
    );
    // The legend's ink is centred on the box's top border.
    let legend_top =
        (box_top + layout::TIME_BOX_BORDER / 2) as f32 - IDEOGRAPH_INK_CENTRE * legend.px;
    canvas.text(font, CLOCK_LABEL, &legend, legend_left as f32, legend_top);
    let label = Style::new(layout::TIME_LABEL_PX, 1, ink);
    let value = Style::new(layout::TIME_PX, 2, ink);
    let times = [
        (GENERATED_LABEL, card.generated_at, layout::GENERATED_TOP),
        (VALID_UNTIL_LABEL, card.valid_until, layout::VALID_UNTIL_TOP),
    ];
    for (name, at, top) in times {
        let at = china_clock(at, TIME_FORMAT);
        canvas.labelled_line(font, (name, &label), (&at, &value), top);
    }

    let notice = Style::new(layout::NOTICE_PX, 0, ink);
    canvas.text_centred(font, NOT_FOR_ARRIVALS, &notice, layout::NOTICE_TOP);

    canvas.into_png(&palette, Some(CARD_DPI))
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
    pub const TIME_BOX: [u32; 4] = [36, 876, 755, 202];
    pub const TIME_BOX_BORDER: u32 = 4;
    /// The clock's name on the box's top border: from the labels' left edge, with white
    /// either side where it interrupts the border.
    pub const LEGEND_PX: f32 = 36.0;
    pub const LEGEND_INSET: u32 = 28;
    pub const LEGEND_PAD: u32 = 10;
    /// 72 px is 9 mm, about 26 pt: legible at arm's length without reading glasses.
    pub const TIME_LABEL_PX: f32 = 60.0;
    pub const TIME_PX: f32 = 72.0;
    pub const GENERATED_TOP: f32 = 896.0;
    pub const VALID_UNTIL_TOP: f32 = 988.0;
    pub const NOTICE_TOP: f32 = 1100.0;
    pub const NOTICE_PX: f32 = 40.0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::relationship::Relationship;
    use crate::imaging::test_support::{
        decode_qr_codes, grey_pixels, sample_token, REAL_TOKEN_CHARS,
    };
    use ab_glyph::Font;
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
    fn a_name_with_a_character_missing_from_the_font_still_makes_a_card() {
        let token = sample_token(REAL_TOKEN_CHARS);
        let png = offline_card_png(&OfflineCard {
            masked_name: "**𠀀",
            ..card(HealthColour::Red, &token)
        });
        assert_eq!(decode_qr_codes(&png.unwrap()), vec![token]);
    }

    #[test]
    fn the_time_box_names_its_clock_on_its_border() {
        // The legend interrupts the box's top border with white, and inks it with its text:
        // along the border's middle row, the ink there is the legend's, not the border's.
        let png =
            offline_card_png(&card(HealthColour::Green, &sample_token(REAL_TOKEN_CHARS))).unwrap();
        let (width, _, grey) = grey_pixels(&png);
        let [box_left, box_top, box_width, _] = layout::TIME_BOX;
        let row = (box_top + layout::TIME_BOX_BORDER / 2) as usize;
        let font = font().unwrap();
        let legend_left = (box_left + layout::LEGEND_INSET) as usize;
        let legend_right = legend_left + text_width(font, CLOCK_LABEL, layout::LEGEND_PX) as usize;
        let border = &grey[row * width..(row + 1) * width];
        // White on either side of the legend, where the border would run.
        let pad = layout::LEGEND_PAD as usize;
        let gaps = (legend_left - pad + 1..legend_left - 2)
            .chain(legend_right + 2..legend_right + pad - 1);
        for x in gaps {
            assert!(
                border[x] > 240,
                "the border runs through the legend at x = {x}"
            );
        }
        let after = legend_right + 2 * layout::LEGEND_PAD as usize;
        assert!(
            (after..(box_left + box_width) as usize - 8).all(|x| border[x] < 60),
            "the border is whole beside the legend"
        );
        // Glyphs of the legend reach above and below the border.
        let inked = |y: usize| (legend_left..legend_right).any(|x| grey[y * width + x] < 100);
        let rows: Vec<usize> = (row - 30..row + 30).filter(|&y| inked(y)).collect();
        assert!(inked(row - 10) && inked(row + 10), "{row}: {rows:?}");
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
            CLOCK_LABEL,
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
    fn long_text_shrinks_to_fit_instead_of_running_off_the_card() {
        let token = sample_token(REAL_TOKEN_CHARS);
        let long = "很长的关系说明".repeat(10);
        let png = offline_card_png(&OfflineCard {
            relationship_label: &long,
            ..card(HealthColour::Yellow, &token)
        });
        assert_eq!(decode_qr_codes(&png.unwrap()), vec![token]);
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
