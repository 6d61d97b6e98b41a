//! What a person sees: the bare QR code as a PNG, the kin code as the phone shows it, the
//! printable offline card, and the household sheet (the cards of a family on A4, as a PDF).
//!
//! All are indexed-colour PNGs drawn into our own pixel buffers (`draw`: the embedded font,
//! palettes, text): a handful of palette entries describe everything on them, so the files are
//! small and fast to encode, and no image library or system font is needed at run time
//! (Lambda has none).

pub mod card;
mod draw;
pub mod kin_code;
pub mod qr;
pub mod sheet;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The text needs more than a version-40 QR code holds at error-correction level M.
    #[error("{chars} characters are too many for one QR code")]
    TooLongForQr { chars: usize },
    #[error("cannot build the QR code: {0}")]
    Qr(qrcode::types::QrError),
    #[error("the embedded font cannot be read")]
    Font,
    /// The household sheet takes only the 8-bit indexed PNGs the card is drawn as.
    #[error("not a card PNG the household sheet can embed")]
    NotACardPng,
    #[error("cannot encode the PNG: {0}")]
    Png(#[from] png::EncodingError),
}

/// An indexed-colour image ready to be encoded.
struct IndexedPng<'a> {
    width: u32,
    height: u32,
    bit_depth: png::BitDepth,
    /// RGB triples, one per palette index.
    palette: &'a [u8],
    /// Packed rows of palette indices, top to bottom, as PNG lays them out.
    rows: &'a [u8],
    /// Print resolution, recorded so the card prints at its intended size.
    dots_per_inch: Option<u32>,
}

impl IndexedPng<'_> {
    fn encode(&self) -> Result<Vec<u8>, ImageError> {
        let mut out = Vec::with_capacity(self.rows.len() / 8 + 1024);
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(self.bit_depth);
        encoder.set_palette(self.palette);
        // Flat areas and repeated rows: the "Up" filter with fdeflate is both fast and compact.
        encoder.set_compression(png::Compression::Fastest);
        if let Some(dpi) = self.dots_per_inch {
            let per_metre = (f64::from(dpi) / 0.0254).round() as u32;
            encoder.set_pixel_dims(Some(png::PixelDimensions {
                xppu: per_metre,
                yppu: per_metre,
                unit: png::Unit::Meter,
            }));
        }
        let mut writer = encoder.write_header()?;
        writer.write_image_data(self.rows)?;
        writer.finish()?;
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Reading our PNGs back the way a scanner would: decode, turn to grey, find the QR codes.

    /// Length of a signed token (`codes::token`: 145 bytes of COSE_Sign1 in base45, and `KC1:`).
    pub const REAL_TOKEN_CHARS: usize = 222;

    /// A token shaped like the real ones: `KC1:`, then base45 characters up to `chars` in all.
    pub fn sample_token(chars: usize) -> String {
        const BASE45: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
        let body: String = (0..chars - 4)
            .map(|i| BASE45[(i * 7 + i / 45) % BASE45.len()] as char)
            .collect();
        format!("KC1:{body}")
    }

    /// Width, height and Rec. 601 luma of every pixel.
    pub fn grey_pixels(png_bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        // Palette and low bit depths expanded to 8-bit RGB.
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().expect("PNG header");
        let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
        let frame = reader.next_frame(&mut buf).expect("PNG data");
        assert_eq!(frame.color_type, png::ColorType::Rgb);
        assert_eq!(frame.bit_depth, png::BitDepth::Eight);
        let grey = buf[..frame.buffer_size()]
            .chunks_exact(3)
            .map(|p| {
                let luma = 299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]);
                (luma / 1000) as u8
            })
            .collect();
        (frame.width as usize, frame.height as usize, grey)
    }

    /// The text of every QR code rqrr finds in the image.
    pub fn decode_qr_codes(png_bytes: &[u8]) -> Vec<String> {
        let (width, height, grey) = grey_pixels(png_bytes);
        let mut prepared =
            rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| grey[y * width + x]);
        prepared
            .detect_grids()
            .into_iter()
            .map(|grid| grid.decode().expect("QR decodes").1)
            .collect()
    }
}
