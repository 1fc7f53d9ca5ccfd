import Testing
@testable import JSON

struct JSONTests {
    /// `closeString`: a string written in place, then closed, gives the bytes that writing
    /// it as a `.string` gives, plain or escaped, whatever comes before it.
    @Test func closeStringInPlaceEqualsWritingTheString() {
        let texts = ["", "plain", "https://s3.example/b/k?X-Amz-Signature=abc", "quote\"", "back\\slash", "nl\n", "ctl\u{1}\u{1f}",
                     "del\u{7f}", "é☃ and \"both\\\u{0}", String(repeating: "x", count: 600) + "\"", String(repeating: "ab\t", count: 100)]
        for text in texts {
            for prefix in [#"{"url":"#, ""] {
                var expected: [UInt8] = Array(prefix.utf8)
                JSONValue.string(text).write(to: &expected)
                var out: [UInt8] = Array(prefix.utf8) + [UInt8(ascii: "\"")]
                let start = out.count
                out.append(contentsOf: text.utf8)
                JSONValue.closeString(in: &out, textFrom: start)
                #expect(out == expected, "\(text)")
            }
        }
    }

    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test func parsesDocument() throws {
        let value = try parse(#" {"uploadId":"2~abc","assetId":12,"parts":[{"ETag":"\"e\"","PartNumber":1}],"x":null,"y":true} "#)
        #expect(value["uploadId"] == "2~abc")
        #expect(value["assetId"] == .number("12"))
        #expect(value["parts"]?.arrayValue?.first?["ETag"] == "\"e\"")
        #expect(value["x"] == .null)
        #expect(value["y"] == .bool(true))
    }

    @Test func numbersKeepTheirText() throws {
        #expect(try parse("1e3") == .number("1e3"))
        #expect(try parse("-0.5") == .number("-0.5"))
    }

    @Test(arguments: ["", "{", "{\"a\":1,}", "[1,]", "01", "1.", "-", "\"\\x\"", "{\"a\":1,\"a\":2}", "\"\\ud800\"",
                      "nul", "{} {}", "\"a\u{01}\"", "[1 2]", String(repeating: "[", count: 100) + String(repeating: "]", count: 100)])
    func refusesMalformed(text: String) {
        #expect(throws: JSONError.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    @Test func unicodeEscapes() throws {
        #expect(try parse(#""\u00e9\ud83d\ude00\n""#) == .string("é😀\n"))
    }

    @Test func serializesAndRoundTrips() throws {
        let value: JSONValue = ["a": "q\"\\\n\u{01}", "b": [1, true, nil], "c": ["d": .int(-5)]]
        let text = String(decoding: value.serialized(), as: UTF8.self)
        #expect(text == #"{"a":"q\"\\\n\u0001","b":[1,true,null],"c":{"d":-5}}"#)
        #expect(try parse(text) == value)
    }

    @Test func refusesInvalidUTF8() {
        #expect(throws: JSONError.self) { try JSONParser.parse([0x22, 0xff, 0xfe, 0x22]) }
    }
}

struct JSONStringWriterTests {
    /// Each character that needs an escape, at every position of a string long enough to
    /// cross the writer's 16-byte steps, is escaped; and the text parses back.
    @Test func escapesAtEveryOffset() throws {
        let escaped: [(Character, String)] = [("\"", "\\\""), ("\\", "\\\\"), ("\n", "\\n"), ("\u{1}", "\\u0001"), ("\u{7f}", "\\u007f")]
        for (character, escape) in escaped {
            for offset in 0..<40 {
                var text = String(repeating: "a", count: 40)
                let index = text.index(text.startIndex, offsetBy: offset)
                text.replaceSubrange(index...index, with: String(character))
                let written = String(decoding: JSONValue.string(text).serialized(), as: UTF8.self)
                #expect(written.contains(escape), "offset \(offset)")
                #expect(try JSONParser.parse(Array(written.utf8)) == .string(text))
            }
        }
        let plain = String(repeating: "https://h/k?X-Amz-Signature=0f~", count: 20)
        #expect(JSONValue.string(plain).serialized() == Array("\"\(plain)\"".utf8))
    }

    /// The word-at-a-time scan agrees with the byte-wise test for every byte value at every
    /// offset, among plain ASCII and among bytes of 0x80 and above (UTF-8), whose borrows
    /// must not make a plain word look as if it needed an escape.
    @Test func theWordScanAgreesWithTheByteTest() {
        for filler: UInt8 in [UInt8(ascii: "a"), 0x80, 0xff, 0x21, 0x5d, 0x7e] {
            for value in 0...255 {
                for offset in 0..<19 {
                    var bytes = [UInt8](repeating: filler, count: 19)
                    bytes[offset] = UInt8(value)
                    let expected = bytes.contains(where: JSONValue.needsEscape(_:))
                    #expect(bytes.withUnsafeBufferPointer(JSONValue.needsEscape(_:)) == expected, "byte \(value) at \(offset) among \(filler)")
                }
            }
        }
    }
}

/// Duplicate keys past the small-object scan are still found (the set takes over).
struct JSONDuplicateKeyTests {
    @Test func aDuplicateFarIntoALargeObjectIsFound() throws {
        var members = (0..<5000).map { #""k\#($0)":\#($0)"# }
        let distinct = "{" + members.joined(separator: ",") + "}"
        let value = try JSONParser.parse(Array(distinct.utf8))
        #expect(value["k4999"] == .number("4999"))
        members.append(#""k1234":0"#)
        let duplicated = "{" + members.joined(separator: ",") + "}"
        #expect(throws: JSONError.self) { try JSONParser.parse(Array(duplicated.utf8)) }
        // And in the first sixteen, where a scan finds it.
        #expect(throws: JSONError.self) { try JSONParser.parse(Array(#"{"a":1,"b":2,"a":3}"#.utf8)) }
    }
}
