"""Object storage and file transfer: S3, Azure Blob Storage, Google Cloud Storage, SFTP, FTP and
FTPS as one family.

Every protocol but Azure is an fsspec file system (``s3fs``, ``gcsfs``, fsspec's own ``sftp``
on paramiko and ``ftp`` on ftplib), so moving a file is the same few calls everywhere: list,
stream a remote object into a local file, stream a local file to a remote path, delete, move,
copy. Why fsspec rather than obstore: obstore covers object stores only (no SFTP, FTP, FTPS),
cannot create a bucket, copy between buckets or assume an STS role, and has no ACL, storage
class, object lock, request-payer or expected-owner options, all of which Kestra's properties
name; s3fs and gcsfs sit on the vendors' own APIs (botocore, the GCS JSON API), which take
every request option, and their async clients keep transfers off the event loop. Azure is
Microsoft's async SDK itself (``azure-storage-blob``, what adlfs wraps): adlfs's calls hide
the server's answers (:mod:`executors.remote.azure`).

Files move through internal storage as ``kestra://`` URIs and never whole in memory: a download
streams into a file of the task's working directory that is then moved into storage
(``put_file``); an upload streams from the stored file (``local_path``).

Modules: ``common`` (what the protocols share: the ``from`` property, regexes, storing
downloads, errors), ``objects`` (what the object stores Azure and GCS share: listing filters,
downloads with checksums, MOVE / DELETE, the polling trigger), ``s3`` (the S3 connection),
``azure`` (Blob Storage), ``gcs`` (Cloud Storage), ``vfs`` (SFTP, FTP, FTPS). The task and
trigger types are in :mod:`executors.plugins.aws_s3`, :mod:`executors.plugins.azure_blob`,
:mod:`executors.plugins.gcp_gcs` and :mod:`executors.plugins.fs_remote`.
"""
