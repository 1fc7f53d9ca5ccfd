import Foundation
import Glibc
import Testing
@testable import FastCGIServer

/// sd_notify and sd_listen_fds as assetd speaks them, against a datagram socket of the test's own.
@Suite(.serialized) struct SystemdTests {
    @Test func notifySendsOneDatagramToNotifySocket() throws {
        let path = NSTemporaryDirectory() + "assetd-notify-\(getpid()).sock"
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        setenv("NOTIFY_SOCKET", path, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        #expect(Systemd.notify("READY=1\nSTATUS=serving"))
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        #expect(n > 0)
        #expect(String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self) == "READY=1\nSTATUS=serving")
    }

    @Test func notifyWithoutAManagerDoesNothing() {
        unsetenv("NOTIFY_SOCKET")
        #expect(Systemd.notify("READY=1") == false)
    }

    @Test func listenFDsAreTakenOnlyForThisProcess() {
        #expect(Systemd.listenDescriptors(environment: ["LISTEN_PID": String(getpid()), "LISTEN_FDS": "2"]) == [3, 4])
        #expect(Systemd.listenDescriptors(environment: ["LISTEN_PID": String(getpid() + 1), "LISTEN_FDS": "1"]).isEmpty)
        #expect(Systemd.listenDescriptors(environment: ["LISTEN_FDS": "1"]).isEmpty)
        #expect(Systemd.listenDescriptors(environment: ["LISTEN_PID": String(getpid()), "LISTEN_FDS": "x"]).isEmpty)
    }

    @Test func routePatternsForLabels() {
        var router = Router()
        router.on("GET", "/s3/start-upload") { _ in .json(["ok": true]) }
        router.on("GET", "/api/assets/{assetId}") { _ in .json(["ok": true]) }
        #expect(router.pattern(for: "/s3/start-upload") == "/s3/start-upload")
        #expect(router.pattern(for: "/api/assets/42") == "/api/assets/{assetId}")
        #expect(router.pattern(for: "/api/assets/42/x") == nil)
    }
}
