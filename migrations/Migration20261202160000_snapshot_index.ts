import { Migration } from '@mikro-orm/migrations';

/**
 * A snapshot's index (DESIGN.md §10): what it holds of one customer, per catalog row (one row
 * per snapshot and customer, so a legacy daily snapshot's index is its customer's part alone).
 * Paths are relative to the site's content folder and up to 4,096 bytes: too long for an
 * InnoDB key (3,072 bytes), so rows are keyed by the SHA-1 of the path and found in a folder
 * by the SHA-1 of the folder's path. The folder index gives a listing's order (folders first,
 * then by name, then the hash to break ties of names equal under the collation) and its pages.
 * The dump's tables, from its CREATE TABLE lines, have their own table. A partial restore's
 * paths and tables are kept on its job.
 */
export class Migration20261202160000_snapshot_index extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table snapshots
      add column indexed_at datetime null,
      add column index_read_at datetime null,
      add column index_entries int unsigned null,
      add column content_folder varchar(32) null,
      add key snapshots_index_read (index_read_at)`);
    this.addSql(`create table snapshot_entries (
      snapshot_row_id int unsigned not null,
      path_hash binary(20) not null,
      parent_hash binary(20) not null,
      kind_rank tinyint unsigned not null,
      name varchar(255) not null,
      path varchar(4096) character set utf8mb4 collate utf8mb4_bin not null,
      type enum('file','dir','symlink','other') not null,
      size_bytes bigint unsigned null,
      mtime datetime(3) null,
      mode smallint unsigned not null,
      primary key (snapshot_row_id, path_hash),
      key snapshot_entries_folder (snapshot_row_id, parent_hash, kind_rank, name, path_hash),
      key snapshot_entries_name (snapshot_row_id, name),
      constraint snapshot_entries_snapshot foreign key (snapshot_row_id)
        references snapshots (id) on delete cascade
    ) engine = InnoDB default character set utf8mb4 collate utf8mb4_unicode_ci`);
    this.addSql(`create table snapshot_tables (
      snapshot_row_id int unsigned not null,
      name varchar(64) character set utf8mb4 collate utf8mb4_bin not null,
      size_bytes bigint unsigned not null,
      primary key (snapshot_row_id, name),
      constraint snapshot_tables_snapshot foreign key (snapshot_row_id)
        references snapshots (id) on delete cascade
    ) engine = InnoDB default character set utf8mb4 collate utf8mb4_unicode_ci`);
    this.addSql(`alter table backup_jobs
      add column paths json null,
      add column \`tables\` json null`);
  }

  override async down(): Promise<void> {
    this.addSql('alter table backup_jobs drop column paths, drop column `tables`');
    this.addSql('drop table if exists snapshot_tables');
    this.addSql('drop table if exists snapshot_entries');
    this.addSql(`alter table snapshots drop key snapshots_index_read,
      drop column indexed_at, drop column index_read_at, drop column index_entries,
      drop column content_folder`);
  }
}
