import AssetStore
import Foundation
import JSON
import Testing
@testable import AssetdApp

/// PATCH /api/assets/{assetId} and the parameters of GET /api/assets, in process.
struct SearchRouteTests {
    let routes: RouteTests

    init() throws { routes = try RouteTests() }

    func ready(_ name: String?, workspace: Int64 = 1, type: String = "image/jpeg", size: Int64 = 10) throws -> AssetRecord {
        try routes.records.createAsset(NewAsset(workspaceID: workspace, fileType: type, fileExtension: "jpg", fileName: name, size: size),
                                       status: .ready, now: Date())
    }

    func patch(_ id: Int64, _ body: String, workspace: Int = 1) -> (Int, JSONValue) {
        routes.call("PATCH", "/api/assets/\(id)", "workspaceId=\(workspace)", body: body)
    }

    func names(_ body: JSONValue) -> [String] {
        (body["assets"]?.arrayValue ?? []).compactMap { $0["fileName"]?.stringValue }
    }

    @Test func patchSetsTitleAndTagsAndTheyAreSearched() throws {
        let asset = try ready("x.jpg")
        let (status, body) = patch(asset.id, #"{"title": "  Sunset over Bretagne ", "tags": ["été", "holiday", "été"]}"#)
        #expect(status == 200)
        #expect(body["asset"]?["title"] == "Sunset over Bretagne")
        #expect(body["asset"]?["tags"] == ["été", "holiday"])
        let (_, got) = routes.call("GET", "/api/assets/\(asset.id)", "workspaceId=1")
        #expect(got["asset"]?["tags"] == ["été", "holiday"])
        let (_, found) = routes.call("GET", "/api/assets", "workspaceId=1&q=ete")
        #expect(names(found) == ["x.jpg"])
        // Only tags: the title stays; null clears.
        #expect(patch(asset.id, #"{"tags": null}"#).1["asset"]?["title"] == "Sunset over Bretagne")
        let (_, cleared) = patch(asset.id, #"{"title": null}"#)
        #expect(cleared["asset"]?["title"] == .null)
        #expect(cleared["asset"]?["tags"] == [])
        #expect(names(routes.call("GET", "/api/assets", "workspaceId=1&q=ete").1).isEmpty)
    }

    @Test func patchRefusesWhatItCannotTake() throws {
        let asset = try ready("x.jpg")
        let cases: [(String, Int, String)] = [
            (#"{}"#, 400, "title or tags"),
            (#"[]"#, 400, "JSON object"),
            (#"{"title": 5}"#, 400, "title"),
            (#"{"title": "a\u0007b"}"#, 400, "title"),
            (#"{"title": "\#(String(repeating: "é", count: 128))"}"#, 400, "title"),
            (#"{"tags": "beach"}"#, 400, "tags"),
            (#"{"tags": ["a", 1]}"#, 400, "tags[1]"),
            (#"{"tags": ["a", " "]}"#, 400, "tags[1]"),
            (#"{"tags": ["\#(String(repeating: "x", count: 65))"]}"#, 400, "tags[0]"),
            (#"{"tags": [\#((0..<33).map { "\"t\($0)\"" }.joined(separator: ","))]}"#, 400, "tags"),
            (#"{"tags": ["a\nb"]}"#, 400, "tags[0]"),
            (#"{"title": "t", "status": "ready"}"#, 400, "\"status\""),
            (#"{"title": "t", "title": "u"}"#, 400, "JSON"),
            (#"{"title": "t""#, 400, "JSON"),
        ]
        for (body, status, names) in cases {
            let (got, answer) = patch(asset.id, body)
            #expect(got == status, "\(body)")
            #expect(answer["error"]?.stringValue?.contains(names) == true, "\(body): \(answer)")
        }
        #expect(try routes.records.asset(id: asset.id, workspaceID: 1)?.title == nil)
        // Bounds are inclusive.
        #expect(patch(asset.id, #"{"title": "\#(String(repeating: "x", count: 255))", "tags": [\#((0..<32).map { "\"\(String(repeating: "t", count: 62))\($0 + 10)\"" }.joined(separator: ","))]}"#).0 == 200)
    }

    @Test func patchIsWorkspaceScoped() throws {
        let other = try ready("theirs.jpg", workspace: 2)
        #expect(patch(other.id, #"{"title": "mine"}"#).0 == 404)
        #expect(patch(other.id, #"{"title": "mine"}"#, workspace: 2).0 == 403)
        #expect(try routes.records.asset(id: other.id, workspaceID: 2)?.title == nil)
        let gone = try ready("gone.jpg")
        _ = try routes.records.beginDelete(id: gone.id)
        try routes.records.markDeleted(id: gone.id, now: Date())
        #expect(patch(gone.id, #"{"title": "x"}"#).0 == 404)
        #expect(patch(999_999, #"{"title": "x"}"#).0 == 404)
        #expect(routes.call("PATCH", "/api/assets/x1", "workspaceId=1", body: #"{"title": "x"}"#).0 == 400)
    }

    @Test func badListParametersAreNamed() throws {
        _ = try ready("a.jpg")
        let cases: [(String, String)] = [
            ("q=\(String(repeating: "a", count: 201))", "q"),
            ("q=a%00b", "q"),
            ("q=\((0..<17).map { "w\($0)" }.joined(separator: "+"))", "q"),
            ("sort=date", "sort"),
            ("sort=relevance", "sort"),
            ("order=up", "order"),
            ("q=beach&order=asc", "order"),
            ("type=audio", "type"),
            ("status=deleting", "status"),
            ("status=deleted", "status"),
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("limit=-1", "limit"),
            ("cursor=%27%3B%20DROP%20TABLE%20asset%3B--", "cursor"),
            ("cursor=AAAA", "cursor"),
            ("cursor=", "cursor"),
            ("cursor=1&sort=name", "cursor"),
            ("cursor=1&q=a", "cursor"),
            ("cursor=0", "cursor"),
        ]
        for (query, parameter) in cases {
            let (status, body) = routes.call("GET", "/api/assets", "workspaceId=1&" + query)
            #expect(status == 400, "\(query)")
            #expect(body["error"]?.stringValue?.hasPrefix(parameter) == true, "\(query): \(body)")
        }
        #expect(routes.call("GET", "/api/assets", "workspaceId=1&q=").0 == 200)
        #expect(routes.call("GET", "/api/assets", "workspaceId=1&q=%22%27%5C%2A%28").0 == 200)
    }

    /// A cursor is bound to its query and its workspace, and any change to it is refused.
    @Test func cursorsAreOpaqueBoundAndUnforgeable() throws {
        for i in 0..<5 { _ = try ready("beach_\(i).jpg", size: Int64(i)) }
        let (_, first) = routes.call("GET", "/api/assets", "workspaceId=1&sort=name&limit=2")
        let cursor = try #require(first["next"]?.stringValue)
        #expect(Int64(cursor) == nil)
        let (status, second) = routes.call("GET", "/api/assets", "workspaceId=1&sort=name&limit=2&cursor=\(cursor)")
        #expect(status == 200)
        #expect(names(second) == ["beach_2.jpg", "beach_3.jpg"])
        for other in ["sort=name&order=desc", "sort=size", "", "sort=name&q=beach", "sort=name&type=image", "sort=name&status=ready"] {
            let (status, body) = routes.call("GET", "/api/assets", "workspaceId=1&limit=2&\(other)&cursor=\(cursor)")
            #expect(status == 400, "\(other)")
            #expect(body["error"]?.stringValue?.hasPrefix("cursor") == true)
        }
        // Every one-character change is refused.
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        var characters = Array(cursor)
        for index in characters.indices {
            let original = characters[index]
            characters[index] = alphabet[(alphabet.firstIndex(of: original)! + 1) % alphabet.count]
            let (status, _) = routes.call("GET", "/api/assets", "workspaceId=1&sort=name&limit=2&cursor=\(String(characters))")
            #expect(status == 400, "changed at \(index)")
            characters[index] = original
        }
        #expect(routes.call("GET", "/api/assets", "workspaceId=1&sort=name&limit=2&cursor=\(cursor)A").0 == 400)
        #expect(routes.call("GET", "/api/assets", "workspaceId=1&sort=name&limit=2&cursor=\(cursor.dropLast())").0 == 400)
    }

    @Test func pagesFollowNextToTheEnd() throws {
        for i in 0..<7 { _ = try ready("f\(i).jpg", size: Int64(7 - i)) }
        _ = try ready("elsewhere.jpg", workspace: 2)
        for (query, expected) in [("sort=size&order=asc", (0..<7).reversed().map { "f\($0).jpg" }),
                                  ("", (0..<7).reversed().map { "f\($0).jpg" }),
                                  ("sort=name", (0..<7).map { "f\($0).jpg" }),
                                  ("q=f", (0..<7).reversed().map { "f\($0).jpg" })] {
            var seen: [String] = []
            var cursor: String?
            repeat {
                let (status, body) = routes.call("GET", "/api/assets", "workspaceId=1&limit=3&\(query)" + (cursor.map { "&cursor=\($0)" } ?? ""))
                #expect(status == 200)
                seen += names(body)
                cursor = body["next"]?.stringValue
            } while cursor != nil && seen.count < 20
            #expect(seen == expected, "\(query)")
        }
        // The id a `next` was before cursors became opaque still pages the default order.
        let all = try routes.records.searchAssets(AssetQuery(workspaceID: 1, limit: 50)).map(\.asset.id)
        let (_, legacy) = routes.call("GET", "/api/assets", "workspaceId=1&limit=50&cursor=\(all[2])")
        #expect(names(legacy) == ["f3.jpg", "f2.jpg", "f1.jpg", "f0.jpg"])
    }
}
