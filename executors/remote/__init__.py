"""Object storage and file transfer: S3, Azure Blob Storage, SFTP, FTP and FTPS as one family.

Every protocol is an fsspec file system (``s3fs``, ``adlfs``, fsspec's own ``sftp`` on paramiko
and ``ftp`` on ftplib), so moving a file is the same few calls everywhere: list, stream a remote
object into a local file, stream a local file to a remote path, delete, move, copy. Why fsspec
rather than obstore: obstore covers object stores only (no SFTP, FTP, FTPS), cannot create a
bucket, copy between buckets or assume an STS role, and has no ACL, storage class, object lock,
request-payer or expected-owner options, all of which Kestra's properties name; s3fs and adlfs
sit on the vendors' own SDKs (botocore, azure-storage-blob), which take every request option,
and their async clients keep transfers off the event loop.

Files move through internal storage as ``kestra://`` URIs and never whole in memory: a download
streams into a file of the task's working directory that is then moved into storage
(``put_file``); an upload streams from the stored file (``local_path``).

Modules: ``common`` (what the protocols share: the ``from`` property, regexes, storing
downloads, errors), ``s3`` (the S3 connection), ``azure`` (Blob Storage), ``vfs`` (SFTP, FTP,
FTPS). The task and trigger types are in :mod:`executors.plugins.aws_s3`,
:mod:`executors.plugins.azure_blob` and :mod:`executors.plugins.fs_remote`.
"""
