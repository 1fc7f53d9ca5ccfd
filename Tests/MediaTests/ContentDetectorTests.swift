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

    /// The first 48 bytes (base64) of a file of each type assetd can store
    /// (MediaTypes.extensions), made by Pillow, libvips (HEIC, AVIF) and ffmpeg (video); the
    /// HEIF one is an `ftyp` box of brand `mif1` (44 bytes). Each still detects with libmagic's parsers cut down.
    static let storableHeads: [(type: String, base64: String)] = [
        ("image/jpeg", "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkS"),
        ("image/png", "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAGUlEQVR4nGM8wcXF"),
        ("image/gif", "R0lGODdhEAAQAIEAAMgKCgAAAAAAAAAAACwAAAAAEAAQAEAIHQABCBxIsKDBgwgT"),
        ("image/webp", "UklGRjwAAABXRUJQVlA4IDAAAADQAQCdASoQABAAAUAmJaACdLoB+AADsAD+9hNf"),
        ("image/heic", "AAAAHGZ0eXBoZWljAAAAAG1pZjFoZWljbWlhZgAAAeRtZXRhAAAAAAAAACFoZGxy"),
        ("image/heif", "AAAAGGZ0eXBtaWYxAAAAAG1pZjFtaWFmAAAB5G1ldGEAAAAAAAAAIWhkbHI="),
        ("image/tiff", "SUkqAAgAAAAKAAABBAABAAAAEAAAAAEBBAABAAAAEAAAAAIBAwADAAAAhgAAAAMB"),
        ("image/avif", "AAAAHGZ0eXBhdmlmAAAAAGF2aWZtaWYxbWlhZgAAASttZXRhAAAAAAAAACFoZGxy"),
        ("video/mp4", "AAAAIGZ0eXBpc29tAAACAGlzb21pc28yYXZjMW1wNDEAAAAIZnJlZQAAAwJtZGF0"),
        ("video/quicktime", "AAAAFGZ0eXBxdCAgAAACAHF0ICAAAAAId2lkZQAAAwJtZGF0AAACrgYF//+q3EXp"),
        ("video/webm", "GkXfo59ChoEBQveBAULygQRC84EIQoKEd2VibUKHgQJChYECGFOAZwEAAAAAAAJF"),
        ("application/pdf", "JVBERi0xLjQKJSBjcmVhdGVkIGJ5IFBpbGxvdyBQREYgZHJpdmVyCjMgMCBvYmo8"),
    ]

    @Test func everyStorableTypeIsStillDetected() throws {
        #expect(Set(Self.storableHeads.map(\.type)).count == 12, "every type of MediaTypes.extensions")
        for (expected, base64) in Self.storableHeads {
            #expect(try type(Array(try #require(Data(base64Encoded: base64)))) == expected)
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
