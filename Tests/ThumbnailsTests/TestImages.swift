import Foundation

/// Files for the tests, written byte by byte: no image library is needed to make them.
enum TestImages {
    static func directory() -> String {
        let path = NSTemporaryDirectory() + "thumbnails-tests-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func write(_ bytes: [UInt8], to path: String) -> String {
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// An 8-bit RGB PNG, `width` x `height`, of a horizontal gradient; its IDAT is zlib's
    /// stored (uncompressed) blocks, or, with `bomb`, claims a size its data never fills.
    static func png(width: Int, height: Int, bomb: Bool = false) -> [UInt8] {
        var raw: [UInt8] = []
        if !bomb {
            raw.reserveCapacity((width * 3 + 1) * height)
            for _ in 0..<height {
                raw.append(0)
                for x in 0..<width { raw += [UInt8(x * 255 / max(1, width - 1)), 64, 128] }
            }
        } else {
            raw = [0, 0, 0, 0]
        }
        var zlib: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let n = min(65_535, raw.count - offset)
            let last: UInt8 = offset + n == raw.count ? 1 : 0
            zlib += [last, UInt8(n & 0xff), UInt8(n >> 8), UInt8(~n & 0xff), UInt8((~n >> 8) & 0xff)]
            zlib += raw[offset..<offset + n]
            offset += n
        } while offset < raw.count
        zlib += bigEndian(UInt32(adler32(raw)))
        var ihdr = bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        ihdr += [8, 2, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", zlib) + chunk("IEND", [])
    }

    /// Only a PNG's header and a token IDAT: `width` x `height`, `bitDepth` bits,
    /// `colourType` (6: RGBA), Adam7-interlaced when `interlaced`. Enough for the header
    /// check; decoding it fails.
    static func pngHeader(width: Int, height: Int, bitDepth: UInt8, colourType: UInt8, interlaced: Bool) -> [UInt8] {
        let ihdr = bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [bitDepth, colourType, 0, 0, interlaced ? 1 : 0]
        let raw: [UInt8] = [0, 0, 0, 0]
        let zlib: [UInt8] = [0x78, 0x01, 1, 4, 0, 0xfb, 0xff] + raw + bigEndian(UInt32(adler32(raw)))
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", zlib) + chunk("IEND", [])
    }

    /// A one-page PDF of `rectangles` filled squares on a 100-inch page: poppler takes
    /// seconds to draw 100 000 of them, even at thumbnail size (a slow decode).
    static func slowPDF(rectangles: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var ops = ""
        ops.reserveCapacity(rectangles * 40)
        for i in 0..<rectangles {
            let x = Int.random(in: 0..<7200, using: &generator), y = Int.random(in: 0..<7200, using: &generator)
            ops += "0.\(i % 9) 0.\(i % 7) 0.5 rg \(x) \(y) 2400 2400 re f\n"
        }
        let content = Array(ops.utf8)
        let objects: [[UInt8]] = [
            Array("<< /Type /Catalog /Pages 2 0 R >>".utf8),
            Array("<< /Type /Pages /Kids [3 0 R] /Count 1 >>".utf8),
            Array("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 7200 7200] /Contents 4 0 R >>".utf8),
            Array("<< /Length \(content.count) >>\nstream\n".utf8) + content + Array("\nendstream".utf8),
        ]
        var out = Array("%PDF-1.4\n".utf8)
        var offsets: [Int] = []
        for (index, object) in objects.enumerated() {
            offsets.append(out.count)
            out += Array("\(index + 1) 0 obj\n".utf8) + object + Array("\nendobj\n".utf8)
        }
        let xref = out.count
        var table = "xref\n0 \(objects.count + 1)\n0000000000 65535 f \n"
        for offset in offsets { table += String(repeating: "0", count: 10 - String(offset).count) + "\(offset) 00000 n \n" }
        table += "trailer\n<< /Size \(objects.count + 1) /Root 1 0 R >>\nstartxref\n\(xref)\n%%EOF\n"
        return out + Array(table.utf8)
    }

    static let svg = Array("""
        <?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">\
        <rect width="100" height="100" fill="red"/></svg>
        """.utf8)

    /// The header of an ImageMagick MIFF file, then pixels.
    static let miff = Array("id=ImageMagick  version=1.0\nclass=DirectClass  colors=0  matte=False\ncolumns=2  rows=2  depth=8\ncolorspace=sRGB\n\u{0C}\n:\u{1A}".utf8)
        + [UInt8](repeating: 200, count: 12)

    private static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
    }

    private static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    private static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in bytes {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        return b << 16 | a
    }
}
