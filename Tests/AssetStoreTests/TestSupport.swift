import Foundation
import AssetStore

extension AssetRecords {
    /// A whole delete, both record steps, with no objects to remove in between: an asset
    /// that is gone, for tests of what a deleted asset still allows.
    func markAssetDeleted(id: Int64, now: Date = Date()) throws {
        guard case .deleting? = try beginDelete(id: id, now: now) else { return }
        try markDeleted(id: id, now: now)
    }
}
