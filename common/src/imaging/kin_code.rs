//! The online kin code as the guardian's phone shows it (`GET …/code` as a PNG): the QR, and
//! around it what makes it a kin code and not a personal code, alone or as a screenshot — the
//! 亲属码 mark and the colour word in a band of the colour, a frame of the colour, whose code it
//! is (masked name, relationship) and when it was drawn, to the second, on the named clock.

use chrono::{DateTime, Utc};

use super::draw::{
    band, china_clock, font, Align, Canvas, Palette, Style, CAPTION_INK, CLOCK_LABEL, INK,
};
use super::qr::{dark_shade, QrMatrix, QR_MODULE_PX, WHITE};
use super::ImageError;
use crate::domain::colour::HealthColour;

/// The mark that says what this is, first and largest after the colour.
pub const KIN_CODE_MARK: &str = "亲属码";
const NAME_LABEL: &str = "姓名";
const RELATIONSHIP_LABEL: &str = "关系";
/// To the second: a screenshot shows its age, and a code drawn a minute ago differs from one
/// drawn now.
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// What the phone's image shows.
pub struct KinCodeImage<'a> {
    pub colour: HealthColour,
    /// The QR payload.
    pub token: &'a str,
    /// Already masked, e.g. `**明`.
    pub masked_name: &'a str,
    /// The relationship's Chinese label, e.g. `子女`.
    pub relationship_label: &'a str,
    /// When the code was signed and drawn.
    pub drawn_at: DateTime<Utc>,
}

/// Where things go and how large, in pixels.
mod layout {
    /// Wide enough for the time line at full size; a phone scales the image to its screen.
    pub const WIDTH: u32 = 640;
    pub const HEIGHT: u32 = 920;
    /// The colour's frame around the white part, on the left, right and bottom.
    pub const FRAME: u32 = 12;
    /// Text keeps this far from the left and right edges.
    pub const MARGIN: f32 = 44.0;
    pub const BAND_HEIGHT: u32 = 196;
    pub const MARK_TOP: f32 = 16.0;
    pub const MARK_PX: f32 = 60.0;
    pub const COLOUR_TOP: f32 = 88.0;
    pub const COLOUR_PX: f32 = 92.0;
    /// The square the QR code, quiet zone included, is drawn in: [`super::QR_MODULE_PX`]-pixel
    /// modules as the bare QR, smaller only for a token longer than any kincode signs.
    pub const QR_TOP: u32 = 200;
    pub const QR_BOX: u32 = 520;
    pub const LABEL_PX: f32 = 30.0;
    pub const VALUE_PX: f32 = 40.0;
    pub const NAME_TOP: f32 = 722.0;
    pub const RELATIONSHIP_TOP: f32 = 780.0;
    pub const TIME_TOP: f32 = 838.0;

    // The QR and its quiet zone fit between the band and the first line of text, and the
    // last line above the frame.
    const _: () = assert!(QR_TOP >= BAND_HEIGHT);
    const _: () = assert!(QR_TOP + QR_BOX <= NAME_TOP as u32);
    const _: () = assert!(TIME_TOP as u32 + VALUE_PX as u32 <= HEIGHT - FRAME);
}

/// A line of text on the image: its runs (text and style), where it sits.
struct Line {
    runs: Vec<(String, Style)>,
    align: Align,
    top: f32,
}

/// The palette's inks.
struct Inks {
    ink: Style,
    caption: Style,
    mark: Style,
    colour_word: Style,
}

/// Every line of text on the image, top to bottom.
fn lines(image: &KinCodeImage<'_>, inks: &Inks) -> Vec<Line> {
    let labelled = |label: &str, value: String, top| Line {
        runs: vec![(label.to_owned(), inks.caption), (value, inks.ink)],
        align: Align::Left,
        top,
    };
    vec![
        Line {
            runs: vec![(KIN_CODE_MARK.to_owned(), inks.mark)],
            align: Align::Centre,
            top: layout::MARK_TOP,
        },
        Line {
            runs: vec![(image.colour.label().to_owned(), inks.colour_word)],
            align: Align::Centre,
            top: layout::COLOUR_TOP,
        },
        labelled(NAME_LABEL, image.masked_name.to_owned(), layout::NAME_TOP),
        labelled(
            RELATIONSHIP_LABEL,
            image.relationship_label.to_owned(),
            layout::RELATIONSHIP_TOP,
        ),
        labelled(
            CLOCK_LABEL,
            china_clock(image.drawn_at, TIME_FORMAT),
            layout::TIME_TOP,
        ),
    ]
}

/// The kin code as an 8-bit indexed PNG, [`layout::WIDTH`] × [`layout::HEIGHT`].
pub fn kin_code_png(image: &KinCodeImage<'_>) -> Result<Vec<u8>, ImageError> {
    let font = font()?;
    let matrix = QrMatrix::encode(image.token)?;

    let mut palette = Palette::default();
    let ink = palette.ramp(WHITE, INK);
    let caption = palette.ramp(WHITE, CAPTION_INK);
    let shade = palette.ramp(WHITE, dark_shade(image.colour));
    let (band_colour, band_ink) = band(image.colour);
    let band = palette.ramp(band_colour, band_ink);
    let inks = Inks {
        ink: Style::new(layout::VALUE_PX, 1, ink),
        caption: Style::new(layout::LABEL_PX, 0, caption),
        mark: Style::new(layout::MARK_PX, 2, band),
        colour_word: Style::new(layout::COLOUR_PX, 3, band),
    };

    let (width, height) = (layout::WIDTH, layout::HEIGHT);
    let mut canvas = Canvas::new(width, height, layout::MARGIN, ink.background());
    // The band on top and the frame around the rest, in the colour: the whole picture reads as
    // this colour's kin code, and the white inside keeps the QR's quiet zone.
    canvas.fill_rect(0, 0, width, layout::BAND_HEIGHT, band.background());
    canvas.frame([0, 0, width, height], layout::FRAME, band.background());

    let modules = matrix.size_with_quiet_zone();
    let module_px = (layout::QR_BOX / modules).clamp(1, QR_MODULE_PX);
    let qr_side = modules * module_px;
    let qr_left = width.saturating_sub(qr_side) / 2;
    canvas.draw_qr(&matrix, qr_left, layout::QR_TOP, module_px, shade.ink());

    for line in lines(image, &inks) {
        let runs: Vec<(&str, Style)> = line.runs.iter().map(|(t, s)| (t.as_str(), *s)).collect();
        canvas.line(font, &runs, line.align, line.top);
    }
    canvas.into_png(&palette, None)
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

    fn drawn_at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 17, 30, 9).unwrap()
    }

    fn image(colour: HealthColour, token: &str) -> KinCodeImage<'_> {
        KinCodeImage {
            colour,
            token,
            masked_name: "**明",
            relationship_label: Relationship::Child.label(),
            drawn_at: drawn_at(),
        }
    }

    fn test_inks() -> Inks {
        let mut palette = Palette::default();
        let ramp = palette.ramp(WHITE, INK);
        Inks {
            ink: Style::new(layout::VALUE_PX, 1, ramp),
            caption: Style::new(layout::LABEL_PX, 0, ramp),
            mark: Style::new(layout::MARK_PX, 2, ramp),
            colour_word: Style::new(layout::COLOUR_PX, 3, ramp),
        }
    }

    fn texts(image: &KinCodeImage<'_>) -> Vec<String> {
        lines(image, &test_inks())
            .iter()
            .map(|l| {
                let runs: Vec<&str> = l.runs.iter().map(|(t, _)| t.as_str()).collect();
                runs.join(" ")
            })
            .collect()
    }

    #[test]
    fn every_colour_decodes_back_to_the_exact_token() {
        for chars in [180, REAL_TOKEN_CHARS] {
            let token = sample_token(chars);
            for colour in HealthColour::ALL {
                let png = kin_code_png(&image(colour, &token)).unwrap();
                assert_eq!(decode_qr_codes(&png), vec![token.clone()], "{colour:?}");
            }
        }
    }

    #[test]
    fn it_says_kin_code_the_colour_whose_code_and_when_on_which_clock() {
        let token = sample_token(REAL_TOKEN_CHARS);
        for colour in HealthColour::ALL {
            let colour_word = colour.label();
            assert_eq!(
                texts(&image(colour, &token)),
                vec![
                    "亲属码".to_owned(),
                    colour_word.to_owned(),
                    "姓名 **明".to_owned(),
                    "关系 子女".to_owned(),
                    // 17:30:09 UTC is 01:30:09 the next day in Beijing.
                    "北京时间 2026-11-29 01:30:09".to_owned(),
                ]
            );
        }
    }

    #[test]
    fn the_font_draws_every_fixed_text() {
        let font = font().unwrap();
        let mut texts = vec![KIN_CODE_MARK, NAME_LABEL, RELATIONSHIP_LABEL, CLOCK_LABEL];
        texts.extend(HealthColour::ALL.map(HealthColour::label));
        texts.extend(Relationship::ALL.map(Relationship::label));
        for text in texts {
            for c in text.chars() {
                assert_ne!(font.glyph_id(c).0, 0, "{c:?} of {text:?} is missing");
            }
        }
    }

    /// Rows of the image with any pixel darker than `threshold` between `left` and `right`.
    fn inked_rows(png: &[u8], left: usize, right: usize, threshold: u8) -> Vec<usize> {
        let (width, height, grey) = grey_pixels(png);
        (0..height)
            .filter(|&y| (left..right).any(|x| grey[y * width + x] < threshold))
            .collect()
    }

    #[test]
    fn each_line_of_text_is_inked_where_the_layout_puts_it() {
        let token = sample_token(REAL_TOKEN_CHARS);
        let png = kin_code_png(&image(HealthColour::Green, &token)).unwrap();
        let frame = layout::FRAME as usize + 1;
        let rows = inked_rows(&png, frame, layout::WIDTH as usize - frame, 160);
        for (top, px) in [
            (layout::NAME_TOP, layout::VALUE_PX),
            (layout::RELATIONSHIP_TOP, layout::VALUE_PX),
            (layout::TIME_TOP, layout::VALUE_PX),
        ] {
            let (top, bottom) = (top as usize, (top + px) as usize);
            assert!(
                rows.iter().any(|&y| (top..bottom).contains(&y)),
                "no ink in the line at {top}"
            );
        }
        // Nothing is drawn between the QR's quiet zone and the first line, nor below the last.
        let qr_bottom = layout::QR_TOP as usize + 61 * QR_MODULE_PX as usize;
        let quiet_bottom = qr_bottom - 4 * QR_MODULE_PX as usize;
        assert!(!rows
            .iter()
            .any(|&y| (quiet_bottom..layout::NAME_TOP as usize).contains(&y)));
        let last = (layout::TIME_TOP + layout::VALUE_PX) as usize;
        let inner_bottom = layout::HEIGHT as usize - layout::FRAME as usize;
        assert!(!rows.iter().any(|&y| (last..inner_bottom).contains(&y)));
    }

    #[test]
    fn the_qr_keeps_its_module_size_and_dominates_the_image() {
        let matrix = QrMatrix::encode(&sample_token(REAL_TOKEN_CHARS)).unwrap();
        let modules = matrix.size_with_quiet_zone();
        assert_eq!((layout::QR_BOX / modules).min(QR_MODULE_PX), QR_MODULE_PX);
        let qr_area = f64::from(modules * QR_MODULE_PX).powi(2);
        let image_area = f64::from(layout::WIDTH * layout::HEIGHT);
        assert!(qr_area / image_area > 0.4, "{}", qr_area / image_area);
    }

    #[test]
    fn odd_names_and_labels_still_make_a_code() {
        let token = sample_token(REAL_TOKEN_CHARS);
        let long = "名".repeat(10_000);
        for (name, relationship) in [("", ""), ("**𠀀", "\u{3000}"), (&long[..], &long[..])] {
            let png = kin_code_png(&KinCodeImage {
                masked_name: name,
                relationship_label: relationship,
                ..image(HealthColour::Yellow, &token)
            });
            assert_eq!(decode_qr_codes(&png.unwrap()), vec![token.clone()]);
        }
    }

    #[test]
    fn a_token_too_long_for_a_qr_code_is_an_error() {
        let result = kin_code_png(&image(HealthColour::Green, &"A".repeat(5000)));
        assert!(matches!(result, Err(ImageError::TooLongForQr { .. })));
    }
}
