//! PNG export (`arena report --png DIR`). plotters' bitmap backend draws the shapes; its text
//! needs a font engine, so [`TextBackend`] wraps it and draws text with `ab_glyph` on a TrueType
//! font found on the system. (plotters' own `ab_glyph` feature would make every backend, the
//! SVG page's too, depend on a registered font.)

use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use anyhow::{Context, Result};
use plotters::prelude::*;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

use crate::plot::Plot;

/// Where fonts usually are on Linux and macOS; `$ARENA_REPORT_FONT` comes first.
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// The font for PNG text: `$ARENA_REPORT_FONT`, else the first of [`FONTS`] that exists.
pub fn find_font() -> Result<FontVec> {
    let path = match std::env::var_os("ARENA_REPORT_FONT") {
        Some(p) => PathBuf::from(p),
        None => FONTS.iter().map(PathBuf::from).find(|p| p.is_file()).with_context(|| {
            format!(
                "PNG export needs a TrueType font and none was found (looked at {}); \
                 install one (Debian: fonts-dejavu-core) or set ARENA_REPORT_FONT=/path/to/font.ttf",
                FONTS.join(", ")
            )
        })?,
    };
    let data = std::fs::read(&path).with_context(|| format!("reading the font {}", path.display()))?;
    FontVec::try_from_vec(data).map_err(|e| anyhow::anyhow!("{}: not a TrueType font: {e}", path.display()))
}

/// Renders `plot` as RGB pixels.
pub fn render(plot: &Plot, font: &FontVec) -> Result<(u32, u32, Vec<u8>)> {
    let (w, h) = plot.size();
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    {
        let backend = TextBackend { inner: BitMapBackend::with_buffer(&mut pixels, (w, h)), font };
        let root = backend.into_drawing_area();
        plot.draw(&root)?;
        root.present().map_err(|e| anyhow::anyhow!("drawing `{}`: {e}", plot.id))?;
    }
    Ok((w, h, pixels))
}

/// Writes `DIR/<plot id>.png`, atomically (a temporary file renamed into place).
pub fn write(plot: &Plot, font: &FontVec, dir: &Path) -> Result<PathBuf> {
    let (w, h, pixels) = render(plot, font)?;
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().context("encoding PNG")?;
        writer.write_image_data(&pixels).context("encoding PNG")?;
    }
    let path = dir.join(format!("{}.png", plot.id));
    let tmp = dir.join(format!(".{}.png.tmp", plot.id));
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// plotters' bitmap backend with text drawn by `ab_glyph`.
pub struct TextBackend<'a> {
    pub inner: BitMapBackend<'a>,
    pub font: &'a FontVec,
}

impl TextBackend<'_> {
    /// Width, ascent and descent (positive down) of `text` at `size` pixels.
    fn measure(&self, text: &str, size: f64) -> (f32, f32, f32) {
        let scaled = self.font.as_scaled(PxScale::from(size as f32));
        let mut width = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                width += scaled.kern(p, id);
            }
            width += scaled.h_advance(id);
            prev = Some(id);
        }
        (width, scaled.ascent(), -scaled.descent())
    }
}

impl DrawingBackend for TextBackend<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }
    fn draw_pixel(
        &mut self,
        p: BackendCoord,
        c: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(p, c)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        s: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(a, b, s)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        s: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(a, b, s, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        s: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, s)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        c: BackendCoord,
        r: u32,
        s: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(c, r, s, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        s: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, s)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<T: BackendTextStyle>(
        &self,
        text: &str,
        style: &T,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let (w, a, d) = self.measure(text, style.size());
        Ok((w.ceil() as u32, (a + d).ceil() as u32))
    }

    /// Lays the glyphs out in the text's own frame (x along the text, y down, the box's top-left
    /// at 0), places the box by its anchor, then turns each pixel as plotters' own text drawing
    /// does (`FontTransform::transform`), so rotated captions land where plotters expects.
    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (width, ascent, descent) = self.measure(text, style.size());
        let height = ascent + descent;
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0.0,
            VPos::Center => -height / 2.0,
            VPos::Bottom => -height,
        };
        let trans = style.transform();
        let (w, h) = self.get_size();
        let scale = PxScale::from(style.size() as f32);
        let scaled = self.font.as_scaled(scale);
        let mut caret = 0.0f32;
        let mut prev = None;
        let mut pixels = Vec::new();
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                caret += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scale, ab_glyph::point(caret, ascent));
            caret += scaled.h_advance(id);
            prev = Some(id);
            let Some(outline) = self.font.outline_glyph(glyph) else { continue };
            let b = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                if coverage > 0.0 {
                    let x = (b.min.x + gx as f32 + dx).round() as i32;
                    let y = (b.min.y + gy as f32 + dy).round() as i32;
                    pixels.push((x, y, coverage));
                }
            });
        }
        for (x, y, coverage) in pixels {
            let (x, y) = trans.transform(x, y);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
                let c = BackendColor { alpha: color.alpha * f64::from(coverage.min(1.0)), rgb: color.rgb };
                self.inner.draw_pixel((x, y), c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::{Kind, Series};

    /// Dark pixels in columns `x0..x1` of an RGB image `w` wide.
    fn dark_in_columns(w: u32, h: u32, px: &[u8], x0: u32, x1: u32) -> usize {
        (0..h)
            .flat_map(|y| (x0..x1).map(move |x| ((y * w + x) * 3) as usize))
            .filter(|&i| px[i] < 100 && px[i + 1] < 100 && px[i + 2] < 100)
            .count()
    }

    #[test]
    fn text_and_the_rotated_y_caption_are_drawn() {
        let Ok(font) = find_font() else {
            // The page needs no font; PNG export does. CI installs one and requires it.
            assert!(
                std::env::var_os("ARENA_REQUIRE_FONT").is_none(),
                "no font found: {:?}",
                find_font().err()
            );
            return;
        };
        let plot = Plot {
            id: "p".into(),
            title: "title".into(),
            kind: Kind::Bars {
                categories: vec!["1".into(), "2".into()],
                series: vec![Series { name: "s".into(), values: vec![Some(1.0), Some(2.0)] }],
                y: "a long y caption".into(),
            },
        };
        let (w, h, px) = render(&plot, &font).unwrap();
        // The y caption sits in the leftmost columns, left of the tick labels; rotated text
        // there is the only dark ink.
        assert!(dark_in_columns(w, h, &px, 0, 24) > 40, "no y caption drawn");
        // The title, centred at the top.
        let top: usize = (0..30u32)
            .flat_map(|y| (w / 3..2 * w / 3).map(move |x| ((y * w + x) * 3) as usize))
            .filter(|&i| px[i] < 100)
            .count();
        assert!(top > 20, "no title drawn");
    }
}
