import Foundation
import Testing
import Media

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

    @Test func dangerousContentIsNamedForWhatItIs() throws {
        #expect(try type(Array("<!DOCTYPE html><html><script>alert(1)</script></html>".utf8)) == "text/html")
        let svg = try type(Array(#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.utf8))
        #expect(svg == "image/svg+xml")
        #expect(try type(Array("#!/bin/sh\nrm -rf /\n".utf8)) == "text/x-shellscript")
        #expect(try type([]) == "application/x-empty")
    }

    @Test func fileDescriptorFromAnyOffset() throws {
        let elf = try Data(contentsOf: URL(fileURLWithPath: "/bin/true"))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("magic-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: path, contents: elf)
        defer { unlink(path) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        lseek(fd, 100, SEEK_SET)
        #expect(try detector.mimeType(ofFile: fd).hasPrefix("application/x-"))
        #expect(try detector.mimeType(ofFile: fd) == detector.mimeType(ofFile: fd)) // the descriptor stays usable
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
