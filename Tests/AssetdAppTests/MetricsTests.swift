import Testing
@testable import AssetdApp

struct MetricsTests {
    /// Request series are found by a hash of the status and the labels' lengths only:
    /// label sets that share it (routes of one length, methods of one length) still count
    /// apart, as `==` compares them whole.
    @Test func labelSetsOfEqualLengthsCountApart() {
        let metrics = Metrics()
        for _ in 0..<3 { metrics.request(route: "/api/assets/{assetId}", method: "GET", status: 200, duration: .milliseconds(1)) }
        metrics.request(route: "/api/assets/{assetXd}", method: "GET", status: 200, duration: .milliseconds(1))
        metrics.request(route: "/api/assets/{assetId}", method: "PUT", status: 200, duration: .milliseconds(1))
        metrics.request(route: "/api/assets/{assetId}", method: "GET", status: 404, duration: .milliseconds(1))
        let lines = String(decoding: metrics.render(), as: UTF8.self).split(separator: "\n")
        for line in [#"assetd_http_requests_total{route="/api/assets/{assetId}",method="GET",status="200"} 3"#,
                     #"assetd_http_requests_total{route="/api/assets/{assetXd}",method="GET",status="200"} 1"#,
                     #"assetd_http_requests_total{route="/api/assets/{assetId}",method="PUT",status="200"} 1"#,
                     #"assetd_http_requests_total{route="/api/assets/{assetId}",method="GET",status="404"} 1"#] {
            #expect(lines.contains { $0 == line }, "\(line) in \(lines)")
        }
    }
}
