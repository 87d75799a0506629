-- The legacy monolith's schema, as such schemas look after fifteen years:
-- CamelCase tables keyed by *SerNum, a DATETIME for a birth date, empty
-- strings for "no value", a Users table beside the patients, and no
-- foreign keys. Every statement is IF NOT EXISTS, because MariaDB commits
-- DDL at once: a migration cut short must be safe to run again.
CREATE TABLE IF NOT EXISTS Patient (
  PatientSerNum INT NOT NULL AUTO_INCREMENT,
  FirstName VARCHAR(100) NOT NULL,
  LastName VARCHAR(100) NOT NULL,
  DateOfBirth DATETIME NULL,
  Email VARCHAR(255) NOT NULL DEFAULT '',
  Language CHAR(2) NOT NULL DEFAULT 'EN',
  LastUpdated TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (PatientSerNum)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS Users (
  UserSerNum INT NOT NULL AUTO_INCREMENT,
  UserType VARCHAR(20) NOT NULL,
  UserTypeSerNum INT NOT NULL,
  Username VARCHAR(255) NOT NULL,
  LastUpdated TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (UserSerNum),
  UNIQUE KEY Users_Username (Username),
  KEY Users_Type (UserType, UserTypeSerNum)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS Patient_Hospital_Identifier (
  Patient_Hospital_Identifier_Id INT NOT NULL AUTO_INCREMENT,
  PatientSerNum INT NOT NULL,
  Hospital_Identifier_Type_Code VARCHAR(20) NOT NULL,
  MRN VARCHAR(20) NOT NULL,
  Is_Active TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (Patient_Hospital_Identifier_Id),
  UNIQUE KEY PHI_Site_MRN (Hospital_Identifier_Type_Code, MRN),
  KEY PHI_Patient (PatientSerNum)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS Photo (
  PhotoSerNum INT NOT NULL AUTO_INCREMENT,
  PatientSerNum INT NOT NULL,
  MimeType VARCHAR(100) NOT NULL,
  PhotoData MEDIUMBLOB NOT NULL,
  DateAdded DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (PhotoSerNum),
  KEY Photo_Patient (PatientSerNum)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
