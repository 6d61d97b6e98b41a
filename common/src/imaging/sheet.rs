//! The household sheet: every offline card of one request on A4 pages to print at home, four to
//! a page (2 × 2), as a PDF and as a PNG preview of its pages.
//!
//! The cards go in as the PNGs already drawn and stored for them, byte for byte: a PDF image
//! can carry a PNG's compressed pixel stream as it is (`FlateDecode` with the PNG predictors,
//! an `Indexed` colour space from its palette), so nothing is drawn, decoded or compressed
//! twice for the PDF, and the QR on the sheet is the very raster of the card. No text is set in
//! the PDF itself (no font is embedded): everything a family reads is on the cards.

use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, TextStr};

use super::qr::WHITE;
use super::ImageError;

/// Cards on one A4 page: A6 is a quarter of A4.
pub const CARDS_PER_PAGE: usize = 4;

/// Where things go on a page, in millimetres from its top-left corner.
mod layout {
    pub const PAGE_WIDTH_MM: f32 = 210.0;
    pub const PAGE_HEIGHT_MM: f32 = 297.0;
    /// A card is printed 95 mm wide (A6 is 105): four full A6 cards would fill the page to its
    /// edges, which home printers cannot print (3-5 mm margins), and leave no room to cut.
    /// At 95 mm a QR module is 0.9 mm, still well above what a scanner needs.
    pub const CARD_WIDTH_MM: f32 = 95.0;
    /// Between the two columns and the two rows: where the scissors go.
    pub const GUTTER_MM: f32 = 4.0;
    /// The dashed cutting guides in the gutters.
    pub const GUIDE_GREY: f32 = 0.6;
    pub const GUIDE_WIDTH_PT: f32 = 0.5;
    pub const GUIDE_DASH_PT: f32 = 3.0;
    /// The preview's resolution: a phone screen's width for a page, the time marks legible.
    pub const PREVIEW_DPI: f32 = 60.0;
    /// Grey between the preview's pages, and their outline.
    pub const PREVIEW_GAP_PX: u32 = 24;
    pub const PREVIEW_BACKDROP: [u8; 3] = [0xD9, 0xD9, 0xD9];
    pub const PREVIEW_GUIDE: [u8; 3] = [0x99, 0x99, 0x99];
}

const PT_PER_MM: f32 = 72.0 / 25.4;

/// The printable document and its preview.
pub struct HouseholdSheet {
    pub pdf: Vec<u8>,
    /// Every page, top to bottom, at [`layout::PREVIEW_DPI`].
    pub preview_png: Vec<u8>,
    pub pages: usize,
}

/// A card's place on its page, in millimetres: left, top, width, height.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Slot {
    left: f32,
    top: f32,
    width: f32,
    height: f32,
}

/// The place of the `index`th card of a page (left to right, then top to bottom) for a card
/// `aspect` times as high as wide, the four together centred on the page.
fn slot(index: usize, aspect: f32) -> Slot {
    let width = layout::CARD_WIDTH_MM;
    let height = width * aspect;
    let left_margin = (layout::PAGE_WIDTH_MM - 2.0 * width - layout::GUTTER_MM) / 2.0;
    let top_margin = (layout::PAGE_HEIGHT_MM - 2.0 * height - layout::GUTTER_MM) / 2.0;
    let (column, row) = ((index % 2) as f32, (index / 2 % 2) as f32);
    Slot {
        left: left_margin + column * (width + layout::GUTTER_MM),
        top: top_margin + row * (height + layout::GUTTER_MM),
        width,
        height,
    }
}

/// The parts of one of our card PNGs a PDF image needs. Only what `card` draws is taken: 8-bit
/// indexed colour, not interlaced.
struct CardPng<'a> {
    width: u32,
    height: u32,
    palette: &'a [u8],
    /// The concatenated IDAT chunks: one zlib stream of filtered rows.
    compressed_rows: Vec<u8>,
}

impl<'a> CardPng<'a> {
    fn parse(png: &'a [u8]) -> Result<Self, ImageError> {
        const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
        let not_a_card = || ImageError::NotACardPng;
        let mut rest = png.strip_prefix(SIGNATURE).ok_or_else(not_a_card)?;
        let (mut header, mut palette, mut compressed_rows) = (None, None, Vec::new());
        while rest.len() >= 12 {
            let length = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            let kind = &rest[4..8];
            let data = rest.get(8..8 + length).ok_or_else(not_a_card)?;
            match kind {
                b"IHDR" => header = Some(data),
                b"PLTE" => palette = Some(data),
                b"IDAT" => compressed_rows.extend_from_slice(data),
                b"IEND" => break,
                _ => {}
            }
            rest = rest.get(12 + length..).ok_or_else(not_a_card)?;
        }
        let header = header.filter(|h| h.len() == 13).ok_or_else(not_a_card)?;
        let word = |at: usize| u32::from_be_bytes(header[at..at + 4].try_into().expect("4 bytes"));
        // Bit depth 8, colour type 3 (indexed), deflate, adaptive filtering, no interlace.
        if header[8..] != [8, 3, 0, 0, 0] || compressed_rows.is_empty() {
            return Err(not_a_card());
        }
        let palette = palette
            .filter(|p| !p.is_empty() && p.len() % 3 == 0 && p.len() <= 256 * 3)
            .ok_or_else(not_a_card)?;
        Ok(Self {
            width: word(0),
            height: word(4),
            palette,
            compressed_rows,
        })
    }

    fn aspect(&self) -> f32 {
        self.height as f32 / self.width as f32
    }
}

/// The sheet of `cards` (PNGs from [`super::card::offline_card_png`]), in that order, four to a
/// page.
pub fn household_sheet(cards: &[&[u8]]) -> Result<HouseholdSheet, ImageError> {
    let parsed = cards
        .iter()
        .map(|png| CardPng::parse(png))
        .collect::<Result<Vec<_>, _>>()?;
    let pages = parsed.len().div_ceil(CARDS_PER_PAGE).max(1);
    Ok(HouseholdSheet {
        pdf: sheet_pdf(&parsed, pages),
        preview_png: sheet_preview(cards, pages)?,
        pages,
    })
}

fn sheet_pdf(cards: &[CardPng<'_>], pages: usize) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let page_tree = Ref::new(2);
    let info = Ref::new(3);
    // Per page: the page, its content; per card: its image.
    let page_ref = |page: usize| Ref::new(4 + 2 * page as i32);
    let content_ref = |page: usize| Ref::new(5 + 2 * page as i32);
    let image_ref = |card: usize| Ref::new(4 + 2 * pages as i32 + card as i32);

    pdf.catalog(catalog).pages(page_tree);
    pdf.pages(page_tree)
        .kids((0..pages).map(page_ref))
        .count(pages as i32);
    pdf.document_info(info)
        .title(TextStr("亲属码·家庭离线码"))
        .creator(TextStr("kincode"));

    let page_size = Rect::new(
        0.0,
        0.0,
        layout::PAGE_WIDTH_MM * PT_PER_MM,
        layout::PAGE_HEIGHT_MM * PT_PER_MM,
    );
    let image_name = |card: usize| format!("Card{card}");
    for page in 0..pages {
        let on_page: Vec<usize> =
            (page * CARDS_PER_PAGE..((page + 1) * CARDS_PER_PAGE).min(cards.len())).collect();
        let names: Vec<String> = on_page.iter().map(|&c| image_name(c)).collect();
        let mut writer = pdf.page(page_ref(page));
        writer
            .parent(page_tree)
            .media_box(page_size)
            .contents(content_ref(page));
        let mut resources = writer.resources();
        let mut images = resources.x_objects();
        for (&card, name) in on_page.iter().zip(&names) {
            images.pair(Name(name.as_bytes()), image_ref(card));
        }
        images.finish();
        resources.finish();
        writer.finish();

        let mut content = Content::new();
        cutting_guides(&mut content, cards.first().map_or(1.0, CardPng::aspect));
        for (slot_index, (&card, name)) in on_page.iter().zip(&names).enumerate() {
            let at = slot(slot_index, cards[card].aspect());
            let bottom = layout::PAGE_HEIGHT_MM - at.top - at.height;
            content.save_state();
            content.transform([
                at.width * PT_PER_MM,
                0.0,
                0.0,
                at.height * PT_PER_MM,
                at.left * PT_PER_MM,
                bottom * PT_PER_MM,
            ]);
            content.x_object(Name(name.as_bytes()));
            content.restore_state();
        }
        pdf.stream(content_ref(page), &content.finish());
    }

    for (index, card) in cards.iter().enumerate() {
        let mut image = pdf.image_xobject(image_ref(index), &card.compressed_rows);
        image.filter(Filter::FlateDecode);
        image
            .decode_parms()
            .predictor(pdf_writer::types::Predictor::PngOptimum)
            .colors(1)
            .bits_per_component(8)
            .columns(card.width as i32);
        image.width(card.width as i32);
        image.height(card.height as i32);
        let hival = (card.palette.len() / 3 - 1) as i32;
        image
            .color_space()
            .indexed(Name(b"DeviceRGB"), hival, card.palette);
        image.bits_per_component(8);
        // Modules stay square-edged when a viewer or printer scales the image.
        image.interpolate(false);
        image.finish();
    }
    pdf.finish()
}

/// Dashed lines along the middle of the gutters, across the page.
fn cutting_guides(content: &mut Content, aspect: f32) {
    let first = slot(0, aspect);
    let middle_x = first.left + first.width + layout::GUTTER_MM / 2.0;
    let middle_y = first.top + first.height + layout::GUTTER_MM / 2.0;
    let (page_w, page_h) = (layout::PAGE_WIDTH_MM, layout::PAGE_HEIGHT_MM);
    content.save_state();
    content.set_stroke_gray(layout::GUIDE_GREY);
    content.set_line_width(layout::GUIDE_WIDTH_PT);
    content.set_dash_pattern([layout::GUIDE_DASH_PT, layout::GUIDE_DASH_PT], 0.0);
    content.move_to(middle_x * PT_PER_MM, 0.0);
    content.line_to(middle_x * PT_PER_MM, page_h * PT_PER_MM);
    let y = (page_h - middle_y) * PT_PER_MM;
    content.move_to(0.0, y);
    content.line_to(page_w * PT_PER_MM, y);
    content.stroke();
    content.restore_state();
}

/// An RGB picture being composed.
struct Rgb {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Rgb {
    fn fill(&mut self, left: u32, top: u32, width: u32, height: u32, colour: [u8; 3]) {
        for y in top..(top + height).min(self.height) {
            for x in left..(left + width).min(self.width) {
                let at = (y * self.width + x) as usize * 3;
                self.pixels[at..at + 3].copy_from_slice(&colour);
            }
        }
    }

    /// Draws the indexed picture `(width, palette, indices)` shrunk into the rectangle: each
    /// target pixel is the average of the source pixels it covers.
    fn shrink_into(&mut self, [left, top, width, height]: [u32; 4], source: &Indexed) {
        let scale_x = source.width as f32 / width as f32;
        let scale_y = source.height as f32 / height as f32;
        for ty in 0..height.min(self.height.saturating_sub(top)) {
            let (y0, y1) = span(ty, scale_y, source.height);
            for tx in 0..width.min(self.width.saturating_sub(left)) {
                let (x0, x1) = span(tx, scale_x, source.width);
                let mut sum = [0u32; 3];
                for sy in y0..y1 {
                    let row = &source.indices[(sy * source.width) as usize..];
                    for &index in &row[x0 as usize..x1 as usize] {
                        let rgb = &source.palette[index as usize * 3..index as usize * 3 + 3];
                        for (s, &c) in sum.iter_mut().zip(rgb) {
                            *s += u32::from(c);
                        }
                    }
                }
                let count = (y1 - y0) * (x1 - x0);
                let at = ((top + ty) * self.width + left + tx) as usize * 3;
                for (channel, s) in sum.into_iter().enumerate() {
                    self.pixels[at + channel] = (s / count.max(1)) as u8;
                }
            }
        }
    }
}

/// The source pixels `[start, end)` a target pixel covers, at least one.
fn span(target: u32, scale: f32, limit: u32) -> (u32, u32) {
    let start = ((target as f32 * scale) as u32).min(limit - 1);
    let end = (((target + 1) as f32 * scale) as u32).clamp(start + 1, limit);
    (start, end)
}

/// A decoded card: palette indices, one byte a pixel.
struct Indexed {
    width: u32,
    height: u32,
    palette: Vec<u8>,
    indices: Vec<u8>,
}

fn decode_card(png: &[u8]) -> Result<Indexed, ImageError> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().map_err(|_| ImageError::NotACardPng)?;
    let palette = reader
        .info()
        .palette
        .as_ref()
        .ok_or(ImageError::NotACardPng)?
        .to_vec();
    let size = reader.output_buffer_size().ok_or(ImageError::NotACardPng)?;
    let mut indices = vec![0; size];
    let frame = reader
        .next_frame(&mut indices)
        .map_err(|_| ImageError::NotACardPng)?;
    if frame.color_type != png::ColorType::Indexed || frame.bit_depth != png::BitDepth::Eight {
        return Err(ImageError::NotACardPng);
    }
    indices.truncate(frame.buffer_size());
    Ok(Indexed {
        width: frame.width,
        height: frame.height,
        palette,
        indices,
    })
}

/// Every page as the PDF lays it out, at [`layout::PREVIEW_DPI`], one under the other.
fn sheet_preview(cards: &[&[u8]], pages: usize) -> Result<Vec<u8>, ImageError> {
    let px = |mm: f32| (mm * layout::PREVIEW_DPI / 25.4).round() as u32;
    let (page_w, page_h) = (px(layout::PAGE_WIDTH_MM), px(layout::PAGE_HEIGHT_MM));
    let gap = layout::PREVIEW_GAP_PX;
    let width = page_w + 2 * gap;
    let height = pages as u32 * (page_h + gap) + gap;
    let mut picture = Rgb {
        width,
        height,
        pixels: layout::PREVIEW_BACKDROP.repeat((width * height) as usize),
    };
    for page in 0..pages as u32 {
        let page_top = gap + page * (page_h + gap);
        picture.fill(gap, page_top, page_w, page_h, WHITE);
    }
    for (index, png) in cards.iter().enumerate() {
        let card = decode_card(png)?;
        let at = slot(
            index % CARDS_PER_PAGE,
            card.height as f32 / card.width as f32,
        );
        let page_top = gap + (index / CARDS_PER_PAGE) as u32 * (page_h + gap);
        if index % CARDS_PER_PAGE == 0 {
            // The cutting guides, as in the PDF (solid: a pixel is too coarse for dashes).
            let middle_x = px(at.left + at.width + layout::GUTTER_MM / 2.0);
            let middle_y = px(at.top + at.height + layout::GUTTER_MM / 2.0);
            picture.fill(gap + middle_x, page_top, 1, page_h, layout::PREVIEW_GUIDE);
            picture.fill(gap, page_top + middle_y, page_w, 1, layout::PREVIEW_GUIDE);
        }
        let rect = [
            gap + px(at.left),
            page_top + px(at.top),
            px(at.width),
            px(at.height),
        ];
        picture.shrink_into(rect, &card);
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&picture.pixels)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::colour::HealthColour;
    use crate::domain::relationship::Relationship;
    use crate::imaging::card::{offline_card_png, OfflineCard, CARD_HEIGHT_PX, CARD_WIDTH_PX};
    use crate::imaging::test_support::{grey_pixels, sample_token};
    use chrono::{TimeZone, Utc};

    fn card_png(colour: HealthColour, token: &str) -> Vec<u8> {
        let generated_at = Utc.with_ymd_and_hms(2026, 11, 28, 17, 30, 0).unwrap();
        offline_card_png(&OfflineCard {
            colour,
            token,
            masked_name: "**明",
            relationship_label: Relationship::Child.label(),
            generated_at,
            valid_until: generated_at + chrono::Duration::days(7),
        })
        .unwrap()
    }

    fn aspect() -> f32 {
        CARD_HEIGHT_PX as f32 / CARD_WIDTH_PX as f32
    }

    #[test]
    fn four_cards_fit_a4_inside_printable_margins_with_a_gutter() {
        let slots: Vec<Slot> = (0..4).map(|i| slot(i, aspect())).collect();
        for s in &slots {
            // Home printers leave 3-5 mm unprinted at each edge.
            assert!(s.left >= 5.0 && s.top >= 5.0, "{s:?}");
            assert!(s.left + s.width <= layout::PAGE_WIDTH_MM - 5.0, "{s:?}");
            assert!(s.top + s.height <= layout::PAGE_HEIGHT_MM - 5.0, "{s:?}");
        }
        // 2 × 2, left to right then top to bottom, never overlapping.
        assert!(slots[1].left >= slots[0].left + slots[0].width + layout::GUTTER_MM - 0.01);
        assert_eq!(slots[0].top, slots[1].top);
        assert!(slots[2].top >= slots[0].top + slots[0].height + layout::GUTTER_MM - 0.01);
        assert_eq!(slots[0].left, slots[2].left);
        // The fifth card starts the next page where the first did.
        assert_eq!(slot(4, aspect()), slots[0]);
        // A card keeps its proportions.
        assert!((slots[0].height / slots[0].width - aspect()).abs() < 1e-6);
    }

    #[test]
    fn a_card_png_is_embedded_as_it_is() {
        let png = card_png(HealthColour::Red, &sample_token(222));
        let parsed = CardPng::parse(&png).unwrap();
        assert_eq!(
            (parsed.width, parsed.height),
            (CARD_WIDTH_PX, CARD_HEIGHT_PX)
        );
        let pdf = sheet_pdf(&[parsed], 1);
        let parsed = CardPng::parse(&png).unwrap();
        // The card's compressed rows are in the PDF byte for byte.
        assert!(pdf
            .windows(parsed.compressed_rows.len())
            .any(|w| w == parsed.compressed_rows));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-"));
        for needed in [
            "/FlateDecode",
            "/Predictor 15",
            "/Indexed",
            "/Columns 827",
            "/MediaBox [0 0 595.27",
        ] {
            assert!(text.contains(needed), "{needed} missing");
        }
    }

    #[test]
    fn anything_but_an_8_bit_indexed_png_is_refused() {
        assert!(matches!(
            household_sheet(&[b"not a png"]),
            Err(ImageError::NotACardPng)
        ));
        // The bare QR is 1-bit: not a card.
        let qr = crate::imaging::qr::qr_png(&sample_token(180), HealthColour::Green).unwrap();
        assert!(matches!(
            household_sheet(&[&qr]),
            Err(ImageError::NotACardPng)
        ));
        let png = card_png(HealthColour::Green, &sample_token(180));
        assert!(matches!(
            household_sheet(&[&png[..png.len() / 2]]),
            Err(ImageError::NotACardPng)
        ));
    }

    #[test]
    fn pages_hold_four_cards_each() {
        let png = card_png(HealthColour::Green, &sample_token(180));
        for (cards, pages) in [(1, 1), (4, 1), (5, 2), (8, 2)] {
            let all = vec![&png[..]; cards];
            let sheet = household_sheet(&all).unwrap();
            assert_eq!(sheet.pages, pages, "{cards} cards");
            let text = String::from_utf8_lossy(&sheet.pdf);
            let page_objects =
                text.matches("/Type /Page").count() - text.matches("/Type /Pages").count();
            assert_eq!(page_objects, pages, "{cards} cards");
            // Each card is one image, drawn once.
            assert_eq!(text.matches("/Subtype /Image").count(), cards);
        }
    }

    #[test]
    fn the_preview_shows_every_page_with_its_cards() {
        let tokens: Vec<String> = (0..5).map(|i| sample_token(180 + i)).collect();
        let pngs: Vec<Vec<u8>> = tokens
            .iter()
            .zip(HealthColour::ALL.iter().cycle())
            .map(|(t, &c)| card_png(c, t))
            .collect();
        let all: Vec<&[u8]> = pngs.iter().map(Vec::as_slice).collect();
        let sheet = household_sheet(&all).unwrap();
        let (width, height, grey) = grey_pixels(&sheet.preview_png);
        let page_h = (layout::PAGE_HEIGHT_MM * layout::PREVIEW_DPI / 25.4).round() as usize;
        let gap = layout::PREVIEW_GAP_PX as usize;
        assert_eq!(height, 2 * (page_h + gap) + gap, "two pages");
        // Each card's colour band is there: darker than the white page in its slot.
        for index in 0..5 {
            let at = slot(index % 4, aspect());
            let px = |mm: f32| (mm * layout::PREVIEW_DPI / 25.4) as usize;
            let page_top = gap + index / 4 * (page_h + gap);
            let (x, y) = (
                gap + px(at.left + at.width / 2.0),
                page_top + px(at.top + 3.0),
            );
            assert!(grey[y * width + x] < 230, "card {index} band");
        }
        // The sixth slot (page 2, second place) is empty white.
        let at = slot(1, aspect());
        let px = |mm: f32| (mm * layout::PREVIEW_DPI / 25.4) as usize;
        let y = gap + page_h + gap + px(at.top + at.height / 2.0);
        assert_eq!(grey[y * width + gap + px(at.left + at.width / 2.0)], 255);
    }
}
