import Foundation
import Testing
@testable import Media

struct ContentDetectorTests {
    let detector: ContentDetector

    init() throws { detector = try ContentDetector() }

    func type(_ bytes: [UInt8]) throws -> String {
        try bytes.withUnsafeBytes { try detector.mimeType(of: $0) }
    }

    @Test func imagesAndDocumentsByTheirBytes() throws {
        #expect(try type([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]) == "image/png")
        #expect(try type(Array("GIF89a".utf8) + [1, 0, 1, 0, 0, 0, 0]) == "image/gif")
        #expect(try type(Array("%PDF-1.4\n%\u{e2}\u{e3}\n1 0 obj\n<<>>\nendobj\n".utf8)) == "application/pdf")
        #expect(try type([0xff, 0xd8, 0xff, 0xe0, 0, 0x10] + Array("JFIF".utf8) + [0, 1, 1, 0, 0, 1, 0, 1, 0, 0]) == "image/jpeg")
    }

    /// The first 48 bytes of a file of each type assetd can store (MediaTypes.extensions),
    /// made by Pillow, libvips (HEIC, AVIF) and ffmpeg (video); the HEIF one is an `ftyp`
    /// box of brand `mif1` alone. Each still detects with libmagic's parsers cut down.
    static let storableHeads: [(type: String, hex: String)] = [
        ("image/jpeg", "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912"),
        ("image/png", "89504e470d0a1a0a0000000d4948445200000010000000100802000000909168360000001949444154789c633cc1c5c5"),
        ("image/gif", "47494638376110001000810000c80a0a0000000000000000002c000000001000100040081d0001081c48b0a0c1830813"),
        ("image/webp", "524946463c000000574542505650382030000000d001009d012a1000100001402625a00274ba01f80003b000fef6135f"),
        ("image/heic", "0000001c6674797068656963000000006d696631686569636d696166000001e46d657461000000000000002168646c72"),
        ("image/heif", "00000018667479706d696631000000006d6966316d696166000001e46d657461000000000000002168646c72"),
        ("image/tiff", "49492a00080000000a000001040001000000100000000101040001000000100000000201030003000000860000000301"),
        ("image/avif", "0000001c667479706176696600000000617669666d6966316d6961660000012b6d657461000000000000002168646c72"),
        ("video/mp4", "000000206674797069736f6d0000020069736f6d69736f32617663316d7034310000000866726565000003026d646174"),
        ("video/quicktime", "00000014667479707174202000000200717420200000000877696465000003026d646174000002ae0605ffffaadc45e9"),
        ("video/webm", "1a45dfa39f4286810142f7810142f2810442f381084282847765626d4287810242858102185380670100000000000245"),
        ("application/pdf", "255044462d312e340a2520637265617465642062792050696c6c6f7720504446206472697665720a332030206f626a3c"),
    ]

    static func bytes(hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    @Test func everyStorableTypeIsStillDetected() throws {
        #expect(Set(Self.storableHeads.map(\.type)).count == 12, "every type of MediaTypes.extensions")
        for (expected, hex) in Self.storableHeads {
            #expect(try type(Self.bytes(hex: hex)) == expected)
        }
    }

    /// Attacker review 11, L3: libmagic's CDF, JSON and CSV parsers ran on upload bytes
    /// inside assetd. They do not run now: what they named gets a plainer type, as refused.
    @Test func parsersThatNameNoStorableTypeDoNotRun() throws {
        let ole2 = [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1] + [UInt8](repeating: 0, count: 504)
        #expect(try type(ole2) == "application/octet-stream", "was application/x-ole-storage (the CDF parser)")
        #expect(try type(Array(#"{"a": [1, 2, {"b": null}]}"#.utf8)) == "text/plain", "was application/json")
        #expect(try type(Array("a,b,c\n1,2,3\n4,5,6\n".utf8)) == "text/plain", "was text/csv")
    }

    /// A file is judged by its first 64 KiB, as the content check of an upload is: not the
    /// 7 MiB libmagic reads by default.
    @Test func aFileIsReadNoFurtherThan64KiB() throws {
        #expect(ContentDetector.maxBytes == 64 * 1024)
        #expect(try detector.bytesMax() == 64 * 1024)
    }

    @Test func dangerousContentIsNamedForWhatItIs() throws {
        #expect(try type(Array("<!DOCTYPE html><html><script>alert(1)</script></html>".utf8)) == "text/html")
        let svg = try type(Array(#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.utf8))
        #expect(svg == "image/svg+xml")
        #expect(try type(Array("#!/bin/sh\nrm -rf /\n".utf8)) == "text/x-shellscript")
        #expect(try type([]) == "application/x-empty")
    }

    /// A minimal static x86-64 ELF executable: the ELF header and one PT_LOAD program
    /// header, padded to 4 KiB with zeros. Made here rather than read from /bin/true,
    /// whose type depends on how the system built it (x-pie-executable, x-sharedlib).
    static func elfExecutable() -> [UInt8] {
        func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
        var bytes: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)  // ELF64, LSB
        bytes += le(UInt16(2)) + le(UInt16(0x3e)) + le(UInt32(1))          // ET_EXEC, x86-64, version 1
        bytes += le(UInt64(0x401000)) + le(UInt64(64)) + le(UInt64(0))     // entry, phoff, shoff
        bytes += le(UInt32(0)) + le(UInt16(64)) + le(UInt16(56)) + le(UInt16(1)) + le(UInt16(64)) + le(UInt16(0)) + le(UInt16(0))
        bytes += le(UInt32(1)) + le(UInt32(5))                             // PT_LOAD, r-x
        bytes += le(UInt64(0)) + le(UInt64(0x400000)) + le(UInt64(0x400000)) + le(UInt64(4096)) + le(UInt64(4096)) + le(UInt64(4096))
        return bytes + [UInt8](repeating: 0, count: 4096 - bytes.count)
    }

    /// The descriptor is read from its start whatever its offset: at offset 100 there are
    /// only zeros (application/octet-stream), so the exact type shows where libmagic read.
    @Test func fileDescriptorFromAnyOffset() throws {
        let elf = Self.elfExecutable()
        #expect(try type(elf) == "application/x-executable")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("magic-\(UUID().uuidString)").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(elf)))
        defer { unlink(path) }
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        lseek(fd, 100, SEEK_SET)
        #expect(try detector.mimeType(ofFile: fd) == "application/x-executable")
        #expect(try detector.mimeType(ofFile: fd) == "application/x-executable") // the descriptor stays usable
        #expect(try type(Array(elf[100...])) == "application/octet-stream")
    }

    @Test func concurrentCallsUseSeparateHandles() async throws {
        let detector = self.detector
        try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<32 {
                group.addTask {
                    let bytes: [UInt8] = i % 2 == 0 ? Array("GIF89a\u{1}\0\u{1}\0\0\0\0".utf8) : Array("%PDF-1.4\n".utf8)
                    return try bytes.withUnsafeBytes { try detector.mimeType(of: $0) }
                }
            }
            var seen: [String: Int] = [:]
            for try await type in group { seen[type, default: 0] += 1 }
            #expect(seen == ["image/gif": 16, "application/pdf": 16])
        }
    }
}
