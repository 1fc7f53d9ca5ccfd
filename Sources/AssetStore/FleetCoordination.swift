/// What several hosts sharing one database need besides the records: a store whose
/// records other processes also change (PostgreSQL) conforms; SQLite, owned by one
/// process (Bootstrap refuses a second one), does not, and the app's in-process locks
/// suffice there.
public protocol FleetCoordination: AnyObject, Sendable {
    /// Who this process is (host:pid:random), as leases and log lines name it.
    var hostName: String { get }
    /// Holds asset `assetID` for a version switch or a delete across every host: false when
    /// another holds it. True when there is no such asset (the caller finds that out
    /// itself). The hold is renewed while this process holds it, until `releaseAsset`;
    /// another host may take it once this process stopped renewing it for `seconds` (it
    /// died, stalled, or lost the database for that long).
    func holdAsset(_ assetID: Int64, seconds: Int) throws -> Bool
    /// Lets go of an asset this process holds.
    func releaseAsset(_ assetID: Int64) throws
    /// Pending thumbnail tasks that no live host holds (never claimed, or whose lease
    /// expired: their host died), for the poller that takes them over.
    func claimableThumbnails(limit: Int) throws -> [Int64]
    /// Runs `body` as the fleet's reconciler pass when it is this process's turn: no other
    /// host is running one, and none ran one within `minimumInterval` seconds. Nil when
    /// it was not this process's turn.
    func asReconcilerPass<T>(minimumInterval: Int, _ body: () throws -> T) throws -> T?
}
